"""The kubesalt lab: systemd-nspawn nodes on a private bridge (DESIGN.md §9, docs/lab.md)."""
