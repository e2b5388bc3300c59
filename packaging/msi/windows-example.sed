# Turns baton.example.toml into the Windows example: paths under
# %ProgramData%\baton as TOML literal strings (no escaping of backslashes),
# the header and the comments on default folders as they are on Windows.
s|^# Install as /etc/baton/baton.toml (Windows: %ProgramData%\\baton\\baton.toml).|# The .msi creates %ProgramData%\\baton\\baton.toml from this file when there is none.|
s|^# backend = "file", else /var/lib/baton (Windows: this file's folder).|# backend = "file", else this file's folder.|
s|^# Used with backend = "file" (Windows default: "lease" in this file's folder).|# Used with backend = "file" (default: "lease" in this file's folder).|
s|^# Check it with:   baton check-config -config /etc/baton/baton.toml|# Check it with:   baton check-config   (in "C:\\Program Files\\baton")|
/"\/\(etc\|var\/lib\)\/baton\/[^"]*"/{
  s|"/etc/baton/\([^"]*\)"|'C:\\ProgramData\\baton\\\1'|g
  s|"/var/lib/baton/\([^"]*\)"|'C:\\ProgramData\\baton\\\1'|g
  :slash
  s|\('C:\\ProgramData\\baton\\[^'/]*\)/|\1\\|
  t slash
}
