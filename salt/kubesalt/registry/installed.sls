# Install the registry (distribution) at the version the archive pins, from the archive's
# repository alone (kubesalt_packages.install_options; docs/states.md).
{%- set install = salt['kubesalt_packages.install_options']('docker-registry') %}

Install the docker-registry package:
  pkg.installed:
    - pkgs: {{ install.pkgs | json }}
    - fromrepo: {{ install.fromrepo | yaml_dquote }}
    - refresh: {{ install.refresh | json }}
    - install_recommends: {{ install.install_recommends | json }}
