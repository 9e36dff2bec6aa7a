package tpmclient

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// The NV indices where Google Compute Engine's vTPM keeps its
// pre-provisioned attestation keys (go-tpm-tools client/handles.go): the
// AK template (TPMT_PUBLIC) and the AK certificate (DER) issued by Google's
// EK/AK CA, which attestd trusts with "tpm": {"builtin_roots": ["gce"]}.
const (
	GCEAKCertNVIndexRSA     tpm2.TPMHandle = 0x01c10000
	GCEAKTemplateNVIndexRSA tpm2.TPMHandle = 0x01c10001
	GCEAKCertNVIndexECC     tpm2.TPMHandle = 0x01c10002
	GCEAKTemplateNVIndexECC tpm2.TPMHandle = 0x01c10003
)

// CreatePrimaryIn creates a primary key from tmpl in hierarchy (e.g.
// tpm2.TPMRHEndorsement for GCE's AKs).
func CreatePrimaryIn(ctx context.Context, t transport.TPM, hierarchy tpm2.TPMHandle, tmpl tpm2.TPMTPublic) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: hierarchy, InPublic: tpm2.New2B(tmpl)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM2_CreatePrimary: %w", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, err
	}
	k, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, err
	}
	return &Key{Handle: rsp.ObjectHandle, Name: rsp.Name, Public: *pub, PublicBytes: tpm2.Marshal(*pub), Pub: k}, nil
}

// ParseTemplate reads a key template stored in NV: a TPMT_PUBLIC, or a
// TPM2B_PUBLIC (the same with a 2-byte size first), as both appear in the
// field.
func ParseTemplate(b []byte) (tpm2.TPMTPublic, error) {
	if len(b) > 2 && int(binary.BigEndian.Uint16(b)) == len(b)-2 {
		if p, err := tpm2.Unmarshal[tpm2.TPMTPublic](b[2:]); err == nil {
			return *p, nil
		}
	}
	p, err := tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return tpm2.TPMTPublic{}, fmt.Errorf("AK template: %w", err)
	}
	return *p, nil
}

// WriteNV defines index (owner-created, readable and writable with its
// empty auth) and writes data to it, in chunks the TPM accepts. For test
// TPMs standing in for a provisioned vTPM.
func WriteNV(t transport.TPM, index tpm2.TPMHandle, data []byte) error {
	def := tpm2.NVDefineSpace{
		AuthHandle: tpm2.TPMRHOwner,
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
			NVIndex: index, NameAlg: tpm2.TPMAlgSHA256,
			Attributes: tpm2.TPMANV{OwnerWrite: true, AuthWrite: true, OwnerRead: true, AuthRead: true, NoDA: true, NT: tpm2.TPMNTOrdinary},
			DataSize:   uint16(len(data)),
		}),
	}
	if _, err := def.Execute(t); err != nil {
		return fmt.Errorf("TPM2_NV_DefineSpace(%#x): %w", uint32(index), err)
	}
	pub, err := tpm2.NVReadPublic{NVIndex: index}.Execute(t)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); {
		n := min(len(data)-off, 512)
		if _, err := (tpm2.NVWrite{
			AuthHandle: tpm2.AuthHandle{Handle: index, Name: pub.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: index, Name: pub.NVName},
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: data[off : off+n]},
			Offset:     uint16(off),
		}).Execute(t); err != nil {
			return fmt.Errorf("TPM2_NV_Write(%#x): %w", uint32(index), err)
		}
		off += n
	}
	return nil
}
