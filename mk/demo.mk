# make demo: build, then run the login lifecycle a newcomer would try first
# against a fresh `chatctl serve` on a free port (scripts/demo.sh).
.PHONY: demo
demo: build
	BIN=$(BIN) scripts/demo.sh
