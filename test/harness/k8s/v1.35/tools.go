//go:build tools

// Package tools pins the commands the harness builds, so that go mod tidy keeps their
// dependencies. Build: go build -o DIR k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
