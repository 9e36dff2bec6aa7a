package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ensureSelfSignedTLS returns the paths of DIR/tls/cert.pem and key.pem,
// creating a self-signed ECDSA P-256 server certificate for 127.0.0.1, ::1
// and localhost on first use and reusing it afterwards, so clients that
// trust the file (NODE_EXTRA_CA_CERTS, curl --cacert) keep working across
// restarts. created reports whether it was made now.
func ensureSelfSignedTLS(dataDir string, now time.Time) (certPath, keyPath string, created bool, err error) {
	dir := filepath.Join(dataDir, "tls")
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_, cerr := os.Stat(certPath)
	_, kerr := os.Stat(keyPath)
	if cerr == nil && kerr == nil {
		// The private key must stay private: refuse one others can read, as
		// the token and dev-identity keys do.
		if st, err := os.Stat(keyPath); err == nil && st.Mode().Perm()&0o077 != 0 {
			return "", "", false, fmt.Errorf("TLS key %s is accessible by group or others (mode %04o); chmod 600 it", keyPath, st.Mode().Perm())
		}
		if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
			return "", "", false, fmt.Errorf("existing TLS certificate %s unusable (delete %s to regenerate): %w", certPath, dir, err)
		}
		return certPath, keyPath, false, nil
	}
	if !errors.Is(cerr, fs.ErrNotExist) && cerr != nil {
		return "", "", false, cerr
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", false, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "attestd local TLS", Organization: []string{"attestd"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// It is its own CA so that it can be installed as a trust anchor.
		IsCA:                  true,
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", false, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", false, err
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", false, err
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", false, err
	}
	return certPath, keyPath, true, nil
}

// writeFileAtomic writes via a temporary file and rename, so a crash never
// leaves a half-written key or certificate behind.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
