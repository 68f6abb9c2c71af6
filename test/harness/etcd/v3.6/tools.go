//go:build tools

// Package tools pins the etcd command so that go mod tidy keeps its dependencies.
// Build: go build -o DIR go.etcd.io/etcd/server/v3
package tools

import _ "go.etcd.io/etcd/server/v3"
