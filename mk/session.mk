# pkg/session: the session file parser joins the short fuzz run of `make test`.
FUZZ_PKGS += ./pkg/session
