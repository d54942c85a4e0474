// Nested module: compares pkg/sig with the official Go library
// (github.com/tencentyun/tls-sig-api-v2-golang), which must stay out of the
// main go.mod. Run: cd bench/sig && go test ./...  (make bench-sig for the
// benchmarks).
module chatctl/bench/sig

go 1.26.8

replace chatctl => ../..

require (
	chatctl v0.0.0
	github.com/tencentyun/tls-sig-api-v2-golang v1.4.0
)
