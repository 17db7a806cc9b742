# Undo kubesalt.repo: the archives' apt sources and keys go.
{%- for source in salt['kubesalt_bootstrap.apt_sources']() %}

Remove the {{ source.saltenv }} apt repository:
  file.absent:
    - name: {{ source.path | yaml_dquote }}

Remove the signing key of the {{ source.saltenv }} apt repository:
  file.absent:
    - name: {{ source.keyring | yaml_dquote }}
    - require:
      - file: Remove the {{ source.saltenv }} apt repository
{%- endfor %}
