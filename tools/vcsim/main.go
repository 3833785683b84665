// Command gpulab serves a "GPU lab" (a JSON lab file) through govmomi's vCenter simulator
// (vcsim) over HTTPS, so that vSphere API clients (pyvmomi) can be tested against the real
// vSphere SOAP API. See README.md.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	os.Exit(run())
}

func run() int {
	labPath := flag.String("lab", "", "lab JSON file (required)")
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on (port 0 = pick a free port)")
	username := flag.String("username", "user", "the only accepted login user name")
	password := flag.String("password", "pass", "the only accepted login password")
	delayMS := flag.Int("delay-ms", 0, "delay every SOAP method by N milliseconds (simulates a remote vCenter)")
	certOut := flag.String("cert-out", "", "write the server's TLS certificate (PEM) to this path")
	useTLS := flag.Bool("tls", true, "serve https (false = plain http)")
	flag.Parse()

	log.SetFlags(0)
	log.SetPrefix("gpulab: ")

	if *labPath == "" {
		fmt.Fprintln(os.Stderr, "gpulab: -lab PATH is required")
		flag.Usage()
		return 2
	}
	if *username == "" || *password == "" {
		fmt.Fprintln(os.Stderr, "gpulab: -username and -password must not be empty")
		return 2
	}
	if *delayMS < 0 {
		fmt.Fprintln(os.Stderr, "gpulab: -delay-ms must be >= 0")
		return 2
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		fmt.Fprintf(os.Stderr, "gpulab: -listen %q: %v\n", *listen, err)
		return 2
	}
	if !*useTLS && *certOut != "" {
		fmt.Fprintln(os.Stderr, "gpulab: -cert-out requires -tls=true")
		return 2
	}

	start := time.Now()
	lab, warnings, err := LoadLab(*labPath)
	mustWarn(warnings)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// Hold the address while the lab is built: a busy port fails now, in one line, not as a panic in
	// vcsim's NewServer (which binds it again right after this listener is closed).
	held, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, listenError(*listen, err))
		return 1
	}
	defer held.Close()

	ctx := context.Background()
	model := newModel(lab.InstanceUUID)
	if err := model.Create(); err != nil {
		fmt.Fprintf(os.Stderr, "gpulab: vcsim model: %v\n", err)
		return 1
	}
	defer model.Remove()

	dsDir, err := buildLab(ctx, model, lab)
	if dsDir != "" {
		defer os.RemoveAll(dsDir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gpulab: building lab: %v\n", err)
		return 1
	}

	installPropertyCollectorFixes()

	// Credentials: a non-default Listen.User makes SessionManager.Login accept only this pair.
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	var certPEM []byte
	if *useTLS {
		cert, pemBytes, err := selfSignedCert(*listen)
		certPEM = pemBytes
		if err != nil {
			fmt.Fprintf(os.Stderr, "gpulab: certificate: %v\n", err)
			return 1
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	held.Close()
	server, err := newServer(model.Service)
	if err != nil {
		fmt.Fprintln(os.Stderr, listenError(*listen, err))
		return 1
	}
	defer server.Close()
	// Written once the port is bound: a start that fails leaves no certificate behind.
	if *certOut != "" {
		if err := ioutil.WriteFile(*certOut, certPEM, 0644); err != nil {
			fmt.Fprintf(os.Stderr, "gpulab: -cert-out: %v\n", err)
			return 1
		}
	}
	// Delay is applied per SOAP call by Service.call; Model.Create stored a pointer to
	// model.DelayConfig, so setting it now (after building) leaves the build fast.
	model.DelayConfig.Delay = *delayMS

	u := *server.URL
	u.User = nil
	log.Printf("lab %q (vCenter instance %s): %d clusters, %d hosts, %d GPUs, %d VMs; ready in %.2fs",
		lab.Name, lab.InstanceUUID, len(lab.Clusters), len(lab.Hosts), countGPUs(lab), len(lab.VMs), time.Since(start).Seconds())

	// Before READY: a caller may send SIGTERM as soon as it has read the line.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "READY %s\n", u.String())
	out.Flush()

	s := <-sig
	log.Printf("received %s, shutting down", s)
	return 0
}

// newServer starts vcsim's server, which panics when it cannot bind (another process took the
// address between held.Close and this call).
func newServer(service *simulator.Service) (server *simulator.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return service.NewServer(), nil
}

// listenError words a bind failure as "gpulab: listen 127.0.0.1:8989: address already in use".
func listenError(listen string, err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		err = opErr.Err
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		err = sysErr.Err
	}
	return fmt.Sprintf("gpulab: listen %s: %v", listen, err)
}

func countGPUs(lab *Lab) int {
	n := 0
	for _, h := range lab.Hosts {
		n += len(h.GPUs)
	}
	return n
}

// selfSignedCert creates a fresh ECDSA P-256 self-signed certificate (CA:true so it can be used
// directly as a trust anchor / cafile) with SANs for localhost, 127.0.0.1, ::1 and the listen host.
func selfSignedCert(listen string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "gpulab vcsim", Organization: []string{"gpulab"}},
		NotBefore:             time.Now().Add(-1 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip != nil {
			if !ip.IsUnspecified() && !ip.Equal(net.ParseIP("127.0.0.1")) && !ip.Equal(net.ParseIP("::1")) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if host != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	if hn, err := os.Hostname(); err == nil && hn != "" && hn != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, hn)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}
