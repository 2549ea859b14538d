// Wrapper module that builds Loki 3's single binary (cmd/loki) with `go build`.
//
// `go install github.com/grafana/loki/v3/cmd/loki@v3.7.8` is refused because Loki's go.mod has
// replace/exclude directives, and those only take effect in the main module. This module is that
// main module: it requires Loki by version and repeats Loki's replace/exclude lines, except the
// local `pkg/push => ./pkg/push` one (that nested module is not in Loki's module zip), so
// github.com/grafana/loki/pkg/push is required by the version Loki's go.mod names instead.
//
// cmd/loki is a `main` package and cannot be imported, so `otel-ml stack build` copies its few
// .go files from the module cache next to this go.mod under .stack/build/loki/ and builds there;
// no Loki source is committed here. When bumping Loki, re-copy the replace/exclude block from
// its go.mod and run `go mod tidy` in that build directory, then copy go.mod/go.sum back.
module github.com/otel-ml/otel-ml/stack/loki-build

go 1.26.5

require (
	github.com/grafana/loki/pkg/push v0.0.0-20250630054201-94c0ba7b0952
	github.com/grafana/loki/v3 v3.7.8
)

replace github.com/Azure/azure-sdk-for-go => github.com/Azure/azure-sdk-for-go v68.0.0+incompatible

replace github.com/Azure/azure-storage-blob-go => github.com/MasslessParticle/azure-storage-blob-go v0.14.1-0.20240322194317-344980fda573

replace github.com/gocql/gocql => github.com/grafana/gocql v0.0.0-20200605141915-ba5dc39ece85

exclude k8s.io/client-go v8.0.0+incompatible

replace github.com/hashicorp/memberlist => github.com/grafana/memberlist v0.3.1-0.20251126142931-6f9f62ab6f86

replace github.com/grafana/regexp => github.com/grafana/regexp v0.0.0-20240518133315-a468a5bfb3bc

replace github.com/influxdata/go-syslog/v3 => github.com/leodido/go-syslog/v4 v4.3.0

replace github.com/thanos-io/objstore => github.com/grafana/objstore v0.0.0-20250728171719-b5d3b766d1b0
