package dcap

import (
	"encoding/binary"
	"fmt"
)

// QEReportSize is the size of the quoting enclave's report (an SGX report
// body) in every DCAP quote's QE report certification data.
const QEReportSize = 384

// Offsets of the fields of an SGX report body the QE checks read (Intel SGX
// SDM, REPORTBODY).
const (
	qeOffMiscSelect = 16
	qeOffAttributes = 48
	qeOffMRSigner   = 128
	qeOffISVProdID  = 256
	qeOffISVSVN     = 258
	qeOffReportData = 320
)

// ParseQEReport reads the fields the QE identity checks need from a QE
// report as signed. It lives here, not in a TEE's abi package, because SGX
// and TDX quotes carry the same QE report: the TDX verifier must not depend
// on the SGX one for it. Reserved ranges are not judged here (the report is
// signed by the PCK key, and QVL does not judge them either).
func ParseQEReport(b []byte) (QEReport, error) {
	var r QEReport
	if len(b) != QEReportSize {
		return r, fmt.Errorf("QE report: %d bytes, want %d", len(b), QEReportSize)
	}
	r.MiscSelect = binary.LittleEndian.Uint32(b[qeOffMiscSelect:])
	copy(r.Attributes[:], b[qeOffAttributes:])
	copy(r.MRSigner[:], b[qeOffMRSigner:])
	r.ISVProdID = binary.LittleEndian.Uint16(b[qeOffISVProdID:])
	r.ISVSVN = binary.LittleEndian.Uint16(b[qeOffISVSVN:])
	copy(r.ReportData[:], b[qeOffReportData:])
	return r, nil
}
