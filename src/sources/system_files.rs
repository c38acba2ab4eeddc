//! Files every image needs: `/etc/passwd`, `/etc/group`, `/tmp` and the merged-/usr symlinks.
