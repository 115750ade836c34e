<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- Published fields: green on time, orange arrived late (merged in), purple geometry repaired; labelled with
     field_id from 1:10,000 in. -->
<qgis version="3.22.0" styleCategories="Symbology|Labeling" labelsEnabled="1">
  <renderer-v2 type="RuleRenderer" symbollevels="0" enableorderby="0" forceraster="0">
    <rules key="root">
      <rule key="on_time" label="On time" symbol="0" filter="NOT &quot;arrived_late&quot; AND NOT &quot;repaired&quot;"/>
      <rule key="late" label="Arrived late, merged in" symbol="1" filter="&quot;arrived_late&quot; AND NOT &quot;repaired&quot;"/>
      <rule key="repaired" label="Geometry repaired" symbol="2" filter="&quot;repaired&quot;"/>
    </rules>
    <symbols>
      <symbol type="fill" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleFill" enabled="1" locked="0" pass="0">
          <Option type="Map">
            <Option name="color" type="QString" value="77,175,74,255"/>
            <Option name="outline_color" type="QString" value="35,90,33,255"/>
            <Option name="outline_style" type="QString" value="solid"/>
            <Option name="outline_width" type="QString" value="0.3"/>
            <Option name="outline_width_unit" type="QString" value="MM"/>
            <Option name="style" type="QString" value="solid"/>
          </Option>
        </layer>
      </symbol>
      <symbol type="fill" name="1" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleFill" enabled="1" locked="0" pass="0">
          <Option type="Map">
            <Option name="color" type="QString" value="255,127,0,255"/>
            <Option name="outline_color" type="QString" value="140,65,0,255"/>
            <Option name="outline_style" type="QString" value="solid"/>
            <Option name="outline_width" type="QString" value="0.3"/>
            <Option name="outline_width_unit" type="QString" value="MM"/>
            <Option name="style" type="QString" value="solid"/>
          </Option>
        </layer>
      </symbol>
      <symbol type="fill" name="2" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleFill" enabled="1" locked="0" pass="0">
          <Option type="Map">
            <Option name="color" type="QString" value="152,78,163,255"/>
            <Option name="outline_color" type="QString" value="80,30,90,255"/>
            <Option name="outline_style" type="QString" value="solid"/>
            <Option name="outline_width" type="QString" value="0.3"/>
            <Option name="outline_width_unit" type="QString" value="MM"/>
            <Option name="style" type="QString" value="solid"/>
          </Option>
        </layer>
      </symbol>
    </symbols>
  </renderer-v2>
  <labeling type="simple">
    <settings calloutType="simple">
      <text-style fieldName="field_id" isExpression="0" fontSize="8" fontSizeUnit="Point" textColor="20,20,20,255" textOpacity="1" fontWeight="50" fontItalic="0" namedStyle="Regular">
        <text-buffer bufferDraw="1" bufferSize="0.7" bufferSizeUnits="MM" bufferColor="255,255,255,255" bufferOpacity="0.8" bufferJoinStyle="128" bufferNoFill="1"/>
      </text-style>
      <placement placement="1" dist="0" distUnits="MM" priority="5" overlapHandling="PreventOverlap"/>
      <rendering scaleVisibility="1" scaleMin="0" scaleMax="10000" minFeatureSize="0" obstacle="0" drawLabels="1" fontLimitPixelSize="0" limitNumLabels="0"/>
    </settings>
  </labeling>
</qgis>
