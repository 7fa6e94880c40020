package main

// serve: etcd and kube-apiserver on free loopback ports, certificates and kubeconfig in DIR,
// `ready` on stdout once /readyz answers, everything stopped on SIGTERM/SIGINT or when
// standard input closes.
//
// Restarts: when kube-apiserver dies while serve is not stopping (a test killed it with
// SIGKILL to simulate an outage), serve starts it again on the same port and the same etcd and
// prints `ready` again once it answers. DIR/apiserver.pid and DIR/etcd.pid always hold the
// current process ids, so tests can SIGSTOP/SIGCONT/SIGKILL them.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

type harness struct {
	dir      string
	self     string
	etcdPort int
	peerPort int
	apiPort  int
	token    string
	caPEM    []byte

	mu       sync.Mutex
	stopping bool
	procs    map[string]*exec.Cmd
}

func serve(dir string) int {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fail("serve: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail("serve: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		return fail("serve: %v", err)
	}
	h := &harness{dir: dir, self: self, procs: map[string]*exec.Cmd{}}
	if err := h.prepare(); err != nil {
		return fail("serve: %v", err)
	}

	stop := make(chan string, 4)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { s := <-sigs; stop <- "signal " + s.String() }()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); stop <- "standard input closed" }()

	if err := h.start("etcd", h.etcdArgs()); err != nil {
		h.shutdown()
		return fail("serve: %v", err)
	}
	if err := h.start("kube-apiserver", h.apiserverArgs()); err != nil {
		h.shutdown()
		return fail("serve: %v", err)
	}
	ready := make(chan error, 1)
	go func() { ready <- h.waitReady(3 * time.Minute) }()
	select {
	case err := <-ready:
		if err != nil {
			h.shutdown()
			return fail("serve: %v", err)
		}
	case why := <-stop:
		fmt.Fprintf(os.Stderr, "serve: stopping before ready (%s)\n", why)
		h.shutdown()
		return 1
	}
	fmt.Println("ready")

	why := <-stop
	fmt.Fprintf(os.Stderr, "serve: stopping (%s)\n", why)
	h.shutdown()
	return 0
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

// prepare picks ports and writes certificates, keys, the token file and the kubeconfig.
// On a second serve of the same DIR (the etcd data is kept), everything is written anew.
func (h *harness) prepare() error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	h.etcdPort, h.peerPort, h.apiPort = ports[0], ports[1], ports[2]

	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	h.token = hex.EncodeToString(tok)
	pki := filepath.Join(h.dir, "pki")

	caKey, caCert, caDER, err := newCA()
	if err != nil {
		return err
	}
	h.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	servingKey, servingDER, err := newServing(caKey, caCert)
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt":      h.caPEM,
		"serving.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: servingDER}),
		"serving.key": keyPEM(servingKey),
		"sa.key":      keyPEM(saKey),
		"tokens.csv":  []byte(fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", h.token)),
		// Every write is logged (who, verb, object), so tests can count requests.
		"audit-policy.yaml": []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  verbs: [create, update, patch, delete, deletecollection]\n- level: None\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(pki, name), data, 0o600); err != nil {
			return err
		}
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: harness
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority: %s
users:
- name: admin
  user:
    # Quoted: a hex token can read as a YAML number (all digits, or "12e45…").
    token: "%s"
contexts:
- name: admin
  context:
    cluster: harness
    user: admin
current-context: admin
`, h.apiPort, filepath.Join(pki, "ca.crt"), h.token)
	if err := os.WriteFile(filepath.Join(h.dir, "admin.kubeconfig"), []byte(kubeconfig), 0o600); err != nil {
		return err
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s kubectl --kubeconfig %s \"$@\"\n",
		strconv.Quote(h.self), strconv.Quote(filepath.Join(h.dir, "admin.kubeconfig")))
	return os.WriteFile(filepath.Join(h.dir, "kubectl"), []byte(wrapper), 0o755)
}

func (h *harness) etcdArgs() []string {
	client := fmt.Sprintf("http://127.0.0.1:%d", h.etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", h.peerPort)
	return []string{
		"--name=harness",
		"--data-dir=" + filepath.Join(h.dir, "etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=harness=" + peer,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}
}

func (h *harness) apiserverArgs() []string {
	pki := filepath.Join(h.dir, "pki")
	return []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", h.etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", h.apiPort),
		"--tls-cert-file=" + filepath.Join(pki, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "serving.key"),
		"--token-auth-file=" + filepath.Join(pki, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112",
		"--allow-privileged=true",
		"--audit-policy-file=" + filepath.Join(pki, "audit-policy.yaml"),
		"--audit-log-path=" + filepath.Join(h.dir, "audit.log"),
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=0",
	}
}

// start runs this binary again as `name` and supervises it: kube-apiserver is restarted
// when it dies while serve is not stopping.
func (h *harness) start(name string, args []string) error {
	logf, err := os.OpenFile(filepath.Join(h.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(h.self, append([]string{name}, args...)...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// The children die with serve, even when serve itself is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	pidName := "apiserver.pid"
	if name == "etcd" {
		pidName = "etcd.pid"
	}
	_ = os.WriteFile(filepath.Join(h.dir, pidName), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	h.mu.Lock()
	h.procs[name] = cmd
	h.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		h.mu.Lock()
		stopping := h.stopping
		h.mu.Unlock()
		if stopping {
			return
		}
		fmt.Fprintf(os.Stderr, "serve: %s exited (%v)\n", name, err)
		if name != "kube-apiserver" {
			return
		}
		time.Sleep(200 * time.Millisecond)
		if err := h.start(name, args); err != nil {
			fmt.Fprintf(os.Stderr, "serve: restart %s: %v\n", name, err)
			return
		}
		if err := h.waitReady(3 * time.Minute); err != nil {
			fmt.Fprintf(os.Stderr, "serve: %v\n", err)
			return
		}
		fmt.Println("ready")
	}()
	return nil
}

// waitReady polls /readyz with the admin token until it answers 200.
func (h *harness) waitReady(limit time.Duration) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(h.caPEM)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", h.apiPort)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+h.token)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		h.mu.Lock()
		etcd := h.procs["etcd"]
		h.mu.Unlock()
		if etcd != nil && etcd.ProcessState != nil {
			return fmt.Errorf("etcd exited: see %s", filepath.Join(h.dir, "etcd.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready after %s: see %s", limit, filepath.Join(h.dir, "kube-apiserver.log"))
}

// shutdown stops kube-apiserver, then etcd: SIGTERM, then SIGKILL after 10 s.
func (h *harness) shutdown() {
	h.mu.Lock()
	h.stopping = true
	procs := h.procs
	h.mu.Unlock()
	for _, name := range []string{"kube-apiserver", "etcd"} {
		cmd := procs[name]
		if cmd == nil || cmd.Process == nil {
			continue
		}
		// A stopped (SIGSTOP) process does not act on SIGTERM until continued.
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && cmd.Process.Signal(syscall.Signal(0)) == nil {
			time.Sleep(50 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
	}
	// Give the Wait goroutines a moment to reap.
	time.Sleep(100 * time.Millisecond)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func newCA() (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dualstack test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, der, err
}

func newServing(caKey *ecdsa.PrivateKey, ca *x509.Certificate) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.96.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return key, der, err
}

func keyPEM(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
