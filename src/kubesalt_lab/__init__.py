"""The kubesalt lab: systemd-nspawn nodes on a private bridge (docs/lab.md)."""
