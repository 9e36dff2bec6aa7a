package collateral

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Window is the validity window of one cached document, as its family
// defines it: issueDate..nextUpdate of an Intel collateral set (its
// earliest end), thisUpdate..nextUpdate of a CRL, NotBefore..NotAfter of a
// certificate.
type Window struct {
	NotBefore, NotAfter time.Time
	// Final means the document never changes for its key (AMD's VCEK for one
	// chip and reported TCB): a cache keeps it without ever refreshing it,
	// and its expiry is for the verifier to judge.
	Final bool
}

// Codec is what a cache needs to know about one family of documents to keep
// them in memory and on disk without knowing the family: how to name a key
// on disk, how to encode and decode a document, and which window a document
// is valid in for a key. Persisted documents are only ever trusted through
// the verifier's signature checks; the codec merely refuses bytes that
// cannot be the document of the key they are filed under.
type Codec[K comparable, D any] interface {
	// Family names the document family ("intel-dcap", "amd-kds-vcek");
	// a persisted record of another family is ignored.
	Family() string
	// KeyName renders k as a file-name-safe string ([a-z0-9._-], at most
	// 200 characters) that ParseKeyName turns back into k.
	KeyName(k K) string
	ParseKeyName(name string) (K, error)
	Encode(d D) ([]byte, error)
	// Decode parses untrusted bytes written by Encode.
	Decode(b []byte) (D, error)
	// Check returns d's validity window, or an error wrapping ErrMalformed
	// when d does not answer k (another FMSPC, chip or TCB).
	Check(k K, d D) (Window, error)
}

// recordMarker is the member that identifies a persisted record.
const recordMarker = "attestdCollateralRecord"

// MaxRecordSize bounds what DecodeRecord accepts; real records are tens of
// kilobytes.
const MaxRecordSize = 4 << 20

// record is the on-disk envelope of one cached document: JSON, so a person
// can tell what a cache file is, with the document as the codec's bytes.
type record struct {
	Version  int    `json:"attestdCollateralRecord"`
	Family   string `json:"family"`
	Key      string `json:"key"`
	Document []byte `json:"document"`
}

// EncodeRecord encodes d, filed under k, as a persisted record.
func EncodeRecord[K comparable, D any](c Codec[K, D], k K, d D) ([]byte, error) {
	b, err := c.Encode(d)
	if err != nil {
		return nil, fmt.Errorf("encoding %s document %s: %w", c.Family(), c.KeyName(k), err)
	}
	return json.MarshalIndent(record{Version: 1, Family: c.Family(), Key: c.KeyName(k), Document: b}, "", " ")
}

// ErrOtherFamily is returned by DecodeRecord for a well-formed record of
// another document family (caches of several families may share a
// directory).
var ErrOtherFamily = errors.New("collateral record of another family")

// PeekRecord reports whether b is a persisted record and, if so, its family.
func PeekRecord(b []byte) (family string, ok bool) {
	var r record
	if len(b) > MaxRecordSize || json.Unmarshal(b, &r) != nil || r.Version == 0 {
		return "", false
	}
	return r.Family, true
}

// DecodeRecord decodes a persisted record of c's family: the key it is filed
// under, the document, and the document's window for that key (Check).
// Untrusted bytes: anything that is not such a record is an error wrapping
// ErrMalformed (or ErrOtherFamily).
func DecodeRecord[K comparable, D any](c Codec[K, D], b []byte) (K, D, Window, error) {
	var (
		k K
		d D
		r record
	)
	if len(b) > MaxRecordSize {
		return k, d, Window{}, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrMalformed, len(b), MaxRecordSize)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return k, d, Window{}, fmt.Errorf("%w: not a collateral record: %v", ErrMalformed, err)
	}
	if r.Version != 1 {
		return k, d, Window{}, fmt.Errorf("%w: collateral record version %d, want 1", ErrMalformed, r.Version)
	}
	if r.Family != c.Family() {
		return k, d, Window{}, fmt.Errorf("%w: %q, want %q", ErrOtherFamily, r.Family, c.Family())
	}
	k, err := c.ParseKeyName(r.Key)
	if err != nil {
		return k, d, Window{}, fmt.Errorf("%w: record key %q: %v", ErrMalformed, r.Key, err)
	}
	if c.KeyName(k) != r.Key {
		return k, d, Window{}, fmt.Errorf("%w: record key %q is not canonical (%q)", ErrMalformed, r.Key, c.KeyName(k))
	}
	d, err = c.Decode(r.Document)
	if err != nil {
		return k, d, Window{}, fmt.Errorf("%s record %s: %w", r.Family, r.Key, err)
	}
	w, err := c.Check(k, d)
	if err != nil {
		return k, d, Window{}, fmt.Errorf("%s record %s: %w", r.Family, r.Key, err)
	}
	return k, d, w, nil
}

// DCAPCodec is the Codec of Intel DCAP collateral sets keyed by Request. Its
// key names are those the cache has always used
// (sgx-00a067110000-processor, tdx-…-platform-tcbeval17), and Check is the
// test every cache applies to a set: it parses (Inspect), serves exactly the
// request's TEE, FMSPC and CA, and carries the requested TCB evaluation
// data number.
var DCAPCodec Codec[Request, *Collateral] = dcapCodec{}

type dcapCodec struct{}

// dcapDocument is the encoded form of a Collateral: every member as the
// exact bytes (base64 in JSON), nothing re-serialised, because the
// signatures cover those bytes.
type dcapDocument struct {
	PCKCRLIssuerChain     []byte `json:"pckCrlIssuerChain"`
	RootCACRL             []byte `json:"rootCaCrl"`
	PCKCRL                []byte `json:"pckCrl"`
	TCBInfoIssuerChain    []byte `json:"tcbInfoIssuerChain"`
	TCBInfo               []byte `json:"tcbInfo"`
	TCBInfoSignature      []byte `json:"tcbInfoSignature"`
	QEIdentityIssuerChain []byte `json:"qeIdentityIssuerChain"`
	QEIdentity            []byte `json:"qeIdentity"`
	QEIdentitySignature   []byte `json:"qeIdentitySignature"`
}

func (dcapCodec) Family() string { return "intel-dcap" }

func (dcapCodec) KeyName(k Request) string {
	s := fmt.Sprintf("%s-%s-%s", strings.ToLower(string(k.TEE)), k.FMSPC, k.CA)
	if k.TCBEvaluationDataNumber != 0 {
		s += fmt.Sprintf("-tcbeval%d", k.TCBEvaluationDataNumber)
	}
	return s
}

var dcapKeyName = regexp.MustCompile(`^(sgx|tdx)-([0-9a-f]{12})-(processor|platform)(?:-tcbeval([1-9][0-9]{0,8}))?$`)

func (dcapCodec) ParseKeyName(name string) (Request, error) {
	m := dcapKeyName.FindStringSubmatch(name)
	if m == nil {
		return Request{}, fmt.Errorf("%q is not <tee>-<fmspc>-<ca>[-tcbeval<N>]", name)
	}
	r := Request{TEE: TEE(strings.ToUpper(m[1])), FMSPC: m[2], CA: m[3]}
	if m[4] != "" {
		r.TCBEvaluationDataNumber, _ = strconv.Atoi(m[4])
	}
	return r, nil
}

func (dcapCodec) Encode(c *Collateral) ([]byte, error) {
	if c == nil {
		return nil, errors.New("nil collateral")
	}
	return json.Marshal(dcapDocument{
		PCKCRLIssuerChain: c.PCKCRLIssuerChain, RootCACRL: c.RootCACRL, PCKCRL: c.PCKCRL,
		TCBInfoIssuerChain: c.TCBInfoIssuerChain, TCBInfo: c.TCBInfo, TCBInfoSignature: c.TCBInfoSignature,
		QEIdentityIssuerChain: c.QEIdentityIssuerChain, QEIdentity: c.QEIdentity, QEIdentitySignature: c.QEIdentitySignature,
	})
}

func (dcapCodec) Decode(b []byte) (*Collateral, error) {
	var d dcapDocument
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%w: Intel collateral document: %v", ErrMalformed, err)
	}
	return &Collateral{
		PCKCRLIssuerChain: d.PCKCRLIssuerChain, RootCACRL: d.RootCACRL, PCKCRL: d.PCKCRL,
		TCBInfoIssuerChain: d.TCBInfoIssuerChain, TCBInfo: d.TCBInfo, TCBInfoSignature: d.TCBInfoSignature,
		QEIdentityIssuerChain: d.QEIdentityIssuerChain, QEIdentity: d.QEIdentity, QEIdentitySignature: d.QEIdentitySignature,
	}, nil
}

// Check's messages read after "source returned " (the cache's prefix).
func (dcapCodec) Check(k Request, c *Collateral) (Window, error) {
	if c == nil {
		return Window{}, fmt.Errorf("no collateral: %w", ErrMalformed)
	}
	info, err := c.Inspect()
	if err != nil {
		return Window{}, fmt.Errorf("unusable collateral: %w", err)
	}
	if info.Request != k.Default() {
		return Window{}, fmt.Errorf("collateral for %s: %w", info.Request, ErrMalformed)
	}
	// Entries are keyed by TCB evaluation data number too: a source must
	// not answer a baseline request with another baseline.
	if err := k.Serves(info); err != nil {
		return Window{}, fmt.Errorf("collateral that does not answer %s: %w", k, err)
	}
	return Window{NotBefore: info.Validity.NotBefore, NotAfter: info.Validity.NotAfter}, nil
}
