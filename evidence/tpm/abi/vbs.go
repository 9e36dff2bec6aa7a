package abi

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// VBS enclave report layout, from the Windows SDK's winnt.h as documented on
// learn.microsoft.com (VBS_ENCLAVE_REPORT_PKG_HEADER, VBS_ENCLAVE_REPORT,
// ENCLAVE_IDENTITY; all little-endian, packed):
//
//	pkg header   0x00 PackageSize, 0x04 Version (1), 0x08 SignatureScheme
//	             (1 = SHA256_RSA_PSS_SHA256), 0x0C SignedStatementSize,
//	             0x10 SignatureSize, 0x14 Reserved            (24 bytes)
//	signed statement (SignedStatementSize bytes):
//	             0x00 ReportSize, 0x04 ReportVersion (1), 0x08 EnclaveData[64],
//	             0x48 ENCLAVE_IDENTITY: OwnerId[32], UniqueId[32], AuthorId[32],
//	             FamilyId[16], ImageId[16], EnclaveSvn, SecureKernelSvn,
//	             PlatformSvn, Flags, SigningLevel, EnclaveType  (152 bytes)
//	             then variable data (VBS_ENCLAVE_REPORT_VARDATA_HEADER
//	             {DataType, Size} entries: module descriptions)
//	signature    SignatureSize bytes
//
// The signature is made by the secure kernel's identity key (IDK_S), whose
// public part Windows measures into the boot log; the encoding of that
// measurement (SIPA VSM_IDK_INFO) is not publicly documented, so package
// verify checks the binding and the structure, not this signature (see its
// package doc).
const (
	vbsPkgHeaderSize   = 24
	vbsReportFixedSize = 8 + 64 + 152
	VBSPkgVersion      = 1
	VBSSchemeRSAPSS256 = 1
	VBSReportVersion   = 1
	VBSEnclaveDataSize = 64
)

// EnclaveIdentity is ENCLAVE_IDENTITY.
type EnclaveIdentity struct {
	OwnerID, UniqueID, AuthorID [32]byte
	FamilyID, ImageID           [16]byte
	EnclaveSvn                  uint32
	SecureKernelSvn             uint32
	PlatformSvn                 uint32
	Flags                       uint32
	SigningLevel                uint32
	EnclaveType                 uint32
}

// VBSReport is a parsed VBS enclave attestation report package.
type VBSReport struct {
	SignatureScheme uint32
	ReportVersion   uint32
	EnclaveData     [VBSEnclaveDataSize]byte
	Identity        EnclaveIdentity
	// SignedStatement is the exact signed bytes; VarData the variable part
	// after the fixed report; Signature the signature bytes.
	SignedStatement []byte
	VarData         []byte
	Signature       []byte
}

// ParseVBSReport parses a VBS enclave report package as returned by
// EnclaveGetAttestationReport.
func ParseVBSReport(b []byte) (*VBSReport, error) {
	if len(b) < vbsPkgHeaderSize+vbsReportFixedSize {
		return nil, fmt.Errorf("vsm_report: %d bytes, shorter than header and report (%d)", len(b), vbsPkgHeaderSize+vbsReportFixedSize)
	}
	if len(b) > MaxRequestSize {
		return nil, fmt.Errorf("vsm_report: %d bytes, limit %d", len(b), MaxRequestSize)
	}
	le := binary.LittleEndian
	pkgSize, version, scheme := le.Uint32(b[0:]), le.Uint32(b[4:]), le.Uint32(b[8:])
	stmtSize, sigSize, reserved := le.Uint32(b[12:]), le.Uint32(b[16:]), le.Uint32(b[20:])
	if uint64(pkgSize) != uint64(len(b)) {
		return nil, fmt.Errorf("vsm_report: PackageSize %d, but %d bytes were sent", pkgSize, len(b))
	}
	if version != VBSPkgVersion {
		return nil, fmt.Errorf("vsm_report: package version %d, want %d", version, VBSPkgVersion)
	}
	if scheme != VBSSchemeRSAPSS256 {
		return nil, fmt.Errorf("vsm_report: signature scheme %d, want %d (SHA256_RSA_PSS_SHA256)", scheme, VBSSchemeRSAPSS256)
	}
	if reserved != 0 {
		return nil, fmt.Errorf("vsm_report: reserved header field %#x, want 0", reserved)
	}
	if uint64(vbsPkgHeaderSize)+uint64(stmtSize)+uint64(sigSize) != uint64(len(b)) {
		return nil, fmt.Errorf("vsm_report: header %d + statement %d + signature %d != package %d", vbsPkgHeaderSize, stmtSize, sigSize, len(b))
	}
	if stmtSize < vbsReportFixedSize {
		return nil, fmt.Errorf("vsm_report: signed statement %d bytes, want at least %d", stmtSize, vbsReportFixedSize)
	}
	if sigSize == 0 {
		return nil, fmt.Errorf("vsm_report: no signature")
	}
	stmt := b[vbsPkgHeaderSize : vbsPkgHeaderSize+int(stmtSize)]
	r := &VBSReport{
		SignatureScheme: scheme,
		SignedStatement: bytes.Clone(stmt),
		Signature:       bytes.Clone(b[vbsPkgHeaderSize+int(stmtSize):]),
	}
	reportSize := le.Uint32(stmt[0:])
	r.ReportVersion = le.Uint32(stmt[4:])
	if reportSize != stmtSize {
		return nil, fmt.Errorf("vsm_report: ReportSize %d, signed statement %d", reportSize, stmtSize)
	}
	if r.ReportVersion != VBSReportVersion {
		return nil, fmt.Errorf("vsm_report: report version %d, want %d", r.ReportVersion, VBSReportVersion)
	}
	copy(r.EnclaveData[:], stmt[8:72])
	id := stmt[72:]
	copy(r.Identity.OwnerID[:], id[0:32])
	copy(r.Identity.UniqueID[:], id[32:64])
	copy(r.Identity.AuthorID[:], id[64:96])
	copy(r.Identity.FamilyID[:], id[96:112])
	copy(r.Identity.ImageID[:], id[112:128])
	r.Identity.EnclaveSvn = le.Uint32(id[128:])
	r.Identity.SecureKernelSvn = le.Uint32(id[132:])
	r.Identity.PlatformSvn = le.Uint32(id[136:])
	r.Identity.Flags = le.Uint32(id[140:])
	r.Identity.SigningLevel = le.Uint32(id[144:])
	r.Identity.EnclaveType = le.Uint32(id[148:])
	r.VarData = bytes.Clone(stmt[vbsReportFixedSize:])
	// Variable data is a sequence of {DataType, Size, data[Size-8]} records;
	// check it tiles the rest of the statement exactly.
	for v := r.VarData; len(v) > 0; {
		if len(v) < 8 {
			return nil, fmt.Errorf("vsm_report: %d trailing bytes after variable data", len(v))
		}
		size := le.Uint32(v[4:])
		if size < 8 || uint64(size) > uint64(len(v)) {
			return nil, fmt.Errorf("vsm_report: variable data record of size %d with %d bytes left", size, len(v))
		}
		v = v[size:]
	}
	return r, nil
}

// MarshalVBSReport is the inverse of ParseVBSReport (for tests and for
// building fixtures): it lays out header, statement and signature.
func MarshalVBSReport(r *VBSReport) []byte {
	le := binary.LittleEndian
	stmt := make([]byte, vbsReportFixedSize, vbsReportFixedSize+len(r.VarData))
	le.PutUint32(stmt[0:], uint32(vbsReportFixedSize+len(r.VarData)))
	le.PutUint32(stmt[4:], r.ReportVersion)
	copy(stmt[8:], r.EnclaveData[:])
	id := stmt[72:]
	copy(id[0:], r.Identity.OwnerID[:])
	copy(id[32:], r.Identity.UniqueID[:])
	copy(id[64:], r.Identity.AuthorID[:])
	copy(id[96:], r.Identity.FamilyID[:])
	copy(id[112:], r.Identity.ImageID[:])
	for i, v := range []uint32{r.Identity.EnclaveSvn, r.Identity.SecureKernelSvn, r.Identity.PlatformSvn,
		r.Identity.Flags, r.Identity.SigningLevel, r.Identity.EnclaveType} {
		le.PutUint32(id[128+4*i:], v)
	}
	stmt = append(stmt, r.VarData...)
	out := make([]byte, vbsPkgHeaderSize, vbsPkgHeaderSize+len(stmt)+len(r.Signature))
	le.PutUint32(out[0:], uint32(vbsPkgHeaderSize+len(stmt)+len(r.Signature)))
	le.PutUint32(out[4:], VBSPkgVersion)
	le.PutUint32(out[8:], r.SignatureScheme)
	le.PutUint32(out[12:], uint32(len(stmt)))
	le.PutUint32(out[16:], uint32(len(r.Signature)))
	out = append(out, stmt...)
	return append(out, r.Signature...)
}
