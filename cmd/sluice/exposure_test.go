package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
)

// freePort returns a TCP port free on every address of this machine, for a server to take.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strings.TrimPrefix(ln.Addr().String(), "[::]")
}

// TestServingBeyondLoopbackNeedsConsent: without authentication, the server refuses an address
// other than loopback unless --allow-unauthenticated says to serve it, and then warns.
func TestServingBeyondLoopbackNeedsConsent(t *testing.T) {
	bin := buildBinary(t)
	addr := "0.0.0.0" + freePort(t)
	out, err := exec.Command(bin, "serve", "--listen", addr, "--data", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--allow-unauthenticated") {
		t.Fatalf("serving %s without consent: %v\n%s", addr, err, out)
	}
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--allow-unauthenticated")
	log, _ := os.ReadFile(srv.logPath)
	if strings.Contains(string(log), "without authentication") {
		t.Fatalf("a loopback server warned about its exposure:\n%s", log)
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", t.TempDir(), "--allow-unauthenticated")
	logs := logFile(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, "the exposed server to serve", func() bool {
		resp, err := http.Get("http://127.0.0.1" + strings.TrimPrefix(addr, "0.0.0.0") + "/_sluice/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, logs)
	for _, warning := range []string{"serving without authentication on an address other than loopback", "set --public-url"} {
		if !strings.Contains(logs(), warning) {
			t.Fatalf("no warning %q in the log of a server exposed with --allow-unauthenticated:\n%s", warning, logs())
		}
	}
}

// TestTLS serves HTTPS with --tls-cert and --tls-key: an SDK client that trusts the certificate
// talks to it, a plain HTTP one does not, and the flags go together.
func TestTLS(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--tls-cert", certFile).CombinedOutput(); err == nil || !strings.Contains(string(out), "go together") {
		t.Fatalf("--tls-cert without --tls-key: %v\n%s", err, out)
	}

	addr := "127.0.0.1" + freePort(t)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	logs := logFile(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	waitFor(t, "the HTTPS server to serve", func() bool {
		resp, err := httpsClient.Get("https://" + addr + "/_sluice/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, logs)

	client := cp.New(cp.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + addr), HTTPClient: httpsClient,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	if _, err := client.ListPipelines(context.Background(), &cp.ListPipelinesInput{}); err != nil {
		t.Fatalf("ListPipelines over HTTPS: %v", err)
	}
	// The URLs it hands out are https:// ones.
	var secret struct {
		WebhookURL string `json:"webhookUrl"`
	}
	resp, err := httpsClient.Get("https://" + addr + "/_sluice/connections/abc/secret")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&secret)
	resp.Body.Close()
	if err != nil || !strings.HasPrefix(secret.WebhookURL, "https://"+addr+"/") {
		t.Fatalf("a connection's webhook URL %q (%v), want it under https://%s", secret.WebhookURL, err, addr)
	}
	// Plain HTTP gets no answer: the connection is TLS from its first byte.
	if plain, err := http.Get("http://" + addr + "/_sluice/health"); err == nil {
		plain.Body.Close()
		t.Fatalf("plain HTTP to the HTTPS server was answered %s", plain.Status)
	}
}

// logFile sends cmd's output to a file and returns what reads it.
func logFile(t *testing.T, cmd *exec.Cmd) func() string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd.Stdout, cmd.Stderr = f, f
	return func() string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and its key, PEM-encoded.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
