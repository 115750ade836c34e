<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- Late fields as the late batches hold them: a dashed orange outline over the published fields (no fill,
     so the fields layer underneath still shows), labelled "detected D" from 1:10,000 in. -->
<qgis version="3.22.0" styleCategories="Symbology|Labeling" labelsEnabled="1">
  <renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">
    <symbols>
      <symbol type="fill" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleLine" enabled="1" locked="0" pass="0">
          <Option type="Map">
            <Option name="line_color" type="QString" value="217,95,2,255"/>
            <Option name="line_style" type="QString" value="dash"/>
            <Option name="line_width" type="QString" value="0.8"/>
            <Option name="line_width_unit" type="QString" value="MM"/>
            <Option name="capstyle" type="QString" value="flat"/>
            <Option name="joinstyle" type="QString" value="miter"/>
          </Option>
        </layer>
      </symbol>
    </symbols>
  </renderer-v2>
  <labeling type="simple">
    <settings calloutType="simple">
      <text-style fieldName="concat('detected ', to_string(&quot;detected_in&quot;))" isExpression="1" fontSize="7" fontSizeUnit="Point" textColor="140,50,0,255" textOpacity="1" fontItalic="1" namedStyle="Italic">
        <text-buffer bufferDraw="1" bufferSize="0.7" bufferSizeUnits="MM" bufferColor="255,255,255,255" bufferOpacity="0.8" bufferNoFill="1"/>
      </text-style>
      <placement placement="1" dist="0" distUnits="MM" yOffset="3" offsetUnits="MM" quadOffset="7" priority="4"/>
      <rendering scaleVisibility="1" scaleMin="0" scaleMax="10000" obstacle="1" drawLabels="1"/>
    </settings>
  </labeling>
</qgis>
