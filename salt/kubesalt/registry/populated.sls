# Push the images of every registered archive into the registry, skipping those already
# there with the same digest (kubesalt_registry.images_present diffs by digest).
include:
  - .running
{%- for layout in salt['kubesalt_bootstrap.image_layouts']() %}

Fill the registry from the image layout {{ layout }}:
  kubesalt_registry.images_present:
    - name: {{ layout | yaml_dquote }}
    - require:
      - sls: kubesalt.registry.running
{%- endfor %}
