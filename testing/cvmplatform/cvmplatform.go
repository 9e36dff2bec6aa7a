// Package cvmplatform makes the test-only pieces of an Azure confidential
// VM for AzureGuest tests: an HCL report whose SEV-SNP report (signed by a
// snpplatform TEST chain) binds a runtime JSON naming a chosen AK, and a
// Secure Boot TCG log with PK, KEK, db and dbx measured. Never part of the
// attestd binary.
package cvmplatform

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"

	"github.com/attestd/attestd/evidence/azureguest/hcl"
	"github.com/attestd/attestd/testing/snpplatform"
	"github.com/attestd/attestd/tpmclient"
)

// VMID is the vmUniqueId of the runtime JSON HCLReport writes.
const VMID = "9A42ABD5-8385-42B3-9255-FE7807698194"

// RuntimeJSON is the HCL runtime JSON naming ak as HCLAkPub.
func RuntimeJSON(ak *rsa.PublicKey) ([]byte, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	return json.Marshal(map[string]any{
		"keys": []any{map[string]any{"kid": hcl.KeyAK, "key_ops": []string{"sign"}, "kty": "RSA",
			"e": b64(big.NewInt(int64(ak.E)).Bytes()), "n": b64(ak.N.Bytes())}},
		"vm-configuration": map[string]any{"console-enabled": true, "secure-boot": true, "tpm-enabled": true, "vmUniqueId": VMID},
		"user-data":        strings.Repeat("00", 64),
	})
}

// HCLReport is the HCL report of a CVM on sp whose runtime JSON names ak.
func HCLReport(sp *snpplatform.Platform, ak *rsa.PublicKey) ([]byte, error) {
	rt, err := RuntimeJSON(ak)
	if err != nil {
		return nil, err
	}
	var rd [64]byte
	sum := sha256.Sum256(rt)
	copy(rd[:], sum[:])
	rep, err := sp.Sign(snpplatform.Report{ReportData: rd})
	if err != nil {
		return nil, err
	}
	return hcl.Marshal(&hcl.Report{Version: 2, Type: hcl.TypeSNP, HashType: hcl.HashSHA256, HWReport: rep, RuntimeData: rt})
}

// BootEvents is a Secure Boot log (tpmclient.SyntheticBootEvents with
// dbCert) with a dbx measured beside db.
func BootEvents(dbCert []byte) ([]tpmclient.Event, error) {
	ev := tpmclient.SyntheticBootEvents(true, dbCert)
	i := slices.IndexFunc(ev, func(e tpmclient.Event) bool { return e.Type == tpmclient.EvSeparator })
	if i < 1 || ev[i-1].Type != tpmclient.EvEFIVariableDriverConfig {
		return nil, errors.New("cvmplatform: unexpected synthetic log layout")
	}
	db := ev[i-1]
	dbx := tpmclient.Event{PCR: 7, Type: db.Type, Data: renameVariable(db.Data, "dbx")}
	return slices.Insert(ev, i, dbx), nil
}

// renameVariable gives a UEFI_VARIABLE_DATA (GUID, name length, data
// length, UTF-16 name, data) another ASCII name.
func renameVariable(v []byte, name string) []byte {
	le := func(b []byte) int {
		n := 0
		for i := len(b) - 1; i >= 0; i-- {
			n = n<<8 | int(b[i])
		}
		return n
	}
	nameLen, dataLen := le(v[16:24]), le(v[24:32])
	data := v[32+2*nameLen : 32+2*nameLen+dataLen]
	b := append([]byte(nil), v[:16]...)
	b = append(b, byte(len(name)), 0, 0, 0, 0, 0, 0, 0)
	b = append(b, byte(dataLen), byte(dataLen>>8), byte(dataLen>>16), byte(dataLen>>24), 0, 0, 0, 0)
	for _, c := range name {
		b = append(b, byte(c), 0)
	}
	return append(b, data...)
}
