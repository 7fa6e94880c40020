// Command kube-harness is the test-only API server of dualstack: one multi-call binary with
// the real etcd, kube-apiserver and kubectl built from their official Go modules, and `serve`,
// which runs etcd and kube-apiserver as separate processes on free loopback ports for the
// Rust end-to-end tests (tests/kube/run is the interface; README.md of this folder says more).
//
// The programs are separate processes because kube-apiserver installs a process-wide signal
// handler and global feature-gate state; `serve` starts this same binary again as `etcd` and
// as `kube-apiserver`.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "kube-harness" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: kube-harness serve DIR | etcd ARGS… | kube-apiserver ARGS… | kubectl ARGS…")
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	switch name {
	case "serve":
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: kube-harness serve DIR")
			os.Exit(2)
		}
		os.Exit(serve(args[0]))
	case "etcd":
		etcdmain.Main(append([]string{"etcd"}, args...))
	case "kube-apiserver":
		cmd := apiserver.NewAPIServerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "kubectl":
		cmd := kubectl.NewDefaultKubectlCommand()
		cmd.SetArgs(args)
		if err := cli.RunNoErrOutput(cmd); err != nil {
			cmdutil.CheckErr(err)
		}
	default:
		fmt.Fprintf(os.Stderr, "kube-harness: unknown program %q\n", name)
		os.Exit(2)
	}
}
