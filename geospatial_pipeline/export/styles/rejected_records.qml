<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- Quarantined records where their geometry parsed: red cross-hatch with a dashed red outline, labelled with
     their reason codes from 1:10,000 in. -->
<qgis version="3.22.0" styleCategories="Symbology|Labeling" labelsEnabled="1">
  <renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">
    <symbols>
      <symbol type="fill" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleFill" enabled="1" locked="0" pass="0">
          <Option type="Map">
            <Option name="color" type="QString" value="215,25,28,255"/>
            <Option name="style" type="QString" value="diagonal_x"/>
            <Option name="outline_color" type="QString" value="215,25,28,255"/>
            <Option name="outline_style" type="QString" value="dash"/>
            <Option name="outline_width" type="QString" value="0.6"/>
            <Option name="outline_width_unit" type="QString" value="MM"/>
          </Option>
        </layer>
      </symbol>
    </symbols>
  </renderer-v2>
  <labeling type="simple">
    <settings calloutType="simple">
      <text-style fieldName="reason_codes" isExpression="0" fontSize="7" fontSizeUnit="Point" textColor="170,0,0,255" textOpacity="1">
        <text-buffer bufferDraw="1" bufferSize="0.7" bufferSizeUnits="MM" bufferColor="255,255,255,255" bufferOpacity="0.8" bufferNoFill="1"/>
      </text-style>
      <placement placement="1" dist="0" distUnits="MM" priority="6"/>
      <rendering scaleVisibility="1" scaleMin="0" scaleMax="10000" obstacle="1" drawLabels="1"/>
    </settings>
  </labeling>
</qgis>
