# login → ready of the official Web SDK (@tencentcloud/chat 3.6.6, in one
# Node process) beside the client core's (pkg/client, in one Go process),
# both against ONE fresh `chatctl serve` (free loopback port, temp config
# dir) in one run: interop/bench/sdk-login.cjs starts the server, runs the
# SDK, then the compiled e2e benchmark BenchmarkSDKCmpLogin
# (e2e/sdkcmp_bench_test.go) against the same server, then one more SDK pass
# under V8's CPU profiler (--profile), and prints markdown tables on stdout:
# side by side, the SDK's phases on the wire, the frames it sends, where its
# CPU goes (`make -s bench-sdk`: nothing else on stdout). Non-zero exit if
# any login fails. About 25 s.
#
#   make bench-sdk                       # 200 timed + 20 warmup per column
#   make bench-sdk SDKBENCH_ARGS='--trace' SDKBENCH_PROFILE=
#
# interop/bench/sdk-login.test.cjs (run by `make interop`) checks that the
# script prints its table and fails loudly when the server refuses logins;
# TestSDKCmpFailsLoudly the same for the Go side.
SDKBENCH_N       ?= 200
SDKBENCH_WARMUP  ?= 20
SDKBENCH_PROFILE ?= --profile
SDKBENCH_ARGS    ?=
SDKBENCH_TEST   := bin/e2e-sdkcmp.test

.PHONY: bench-sdk
bench-sdk: build
	@echo "bench-sdk: npm ci --prefix interop; go test -c -o $(SDKBENCH_TEST) ./e2e" >&2
	@$(NPM) ci --prefix interop --no-audit --no-fund --loglevel=error >&2
	@$(GO) test -c -o $(SDKBENCH_TEST) ./e2e >&2
	@CHATCTL_BIN=$(abspath $(BIN)) SDKCMP_GO_TEST=$(abspath $(SDKBENCH_TEST)) \
		$(NODE) interop/bench/sdk-login.cjs --n $(SDKBENCH_N) --warmup $(SDKBENCH_WARMUP) $(SDKBENCH_PROFILE) $(SDKBENCH_ARGS)

bench: bench-sdk
