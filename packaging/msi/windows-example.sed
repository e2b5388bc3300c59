# Turns baton.example.toml into the Windows example: paths under
# %ProgramData%\baton as TOML literal strings (no escaping of backslashes),
# the check-config line without the Unix path.
s|^# Check it with:   baton check-config -config /etc/baton/baton.toml|# Check it with:   baton check-config   (in "C:\\Program Files\\baton")|
/"\/\(etc\|var\/lib\)\/baton\/[^"]*"/{
  s|"/etc/baton/\([^"]*\)"|'C:\\ProgramData\\baton\\\1'|g
  s|"/var/lib/baton/\([^"]*\)"|'C:\\ProgramData\\baton\\\1'|g
  :slash
  s|\('C:\\ProgramData\\baton\\[^'/]*\)/|\1\\|
  t slash
}
