# Salt runs from its virtualenv (/opt/kubesalt/salt), installed by bootstrap.sh from the
# archive's wheels; its commands are linked into /usr/local/bin.

Check that Salt is installed in its virtualenv:
  file.exists:
    - name: /opt/kubesalt/salt/bin/salt-call
{%- for link, target in salt['kubesalt_bootstrap.salt_commands']() | dictsort %}

Link {{ link }} to the Salt virtualenv:
  file.symlink:
    - name: {{ link | yaml_dquote }}
    - target: {{ target | yaml_dquote }}
    - require:
      - file: Check that Salt is installed in its virtualenv
{%- endfor %}
