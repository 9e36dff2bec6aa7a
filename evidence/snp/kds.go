package snp

import (
	"context"
	"errors"
	"fmt"

	"github.com/attestd/attestd/collateral"
	amdkds "github.com/attestd/attestd/collateral/kds"
	"github.com/attestd/attestd/evidence/snp/verify"
)

// KDS adapts an AMD collateral source (collateral/kds: the KDS client, a
// directory bundle, their cache) to the verifier's endorsement and CRL
// sources. A source's transient failures (unreachable, 429) become
// verify.ErrUnavailable, so a rate-limited KDS is reported as "not judged",
// never as bad evidence.
type KDS struct{ Source amdkds.Source }

var (
	_ verify.EndorsementSource = KDS{}
	_ verify.CRLSource         = KDS{}
)

func transient(err error) error {
	if errors.Is(err, collateral.ErrUnavailable) {
		return fmt.Errorf("%w: %w", verify.ErrUnavailable, err)
	}
	return err
}

// VCEK fetches the VCEK of a chip at a TCB.
func (k KDS) VCEK(ctx context.Context, r verify.EndorsementRequest) ([]byte, error) {
	key, err := amdkds.NewVCEKKey(amdkds.Product(r.ProductLine), r.ChipID, r.TCB)
	if err != nil {
		return nil, err
	}
	c, err := k.Source.VCEK(ctx, key)
	if err != nil {
		return nil, transient(err)
	}
	return c.Raw, nil
}

// CRL fetches the CRL of a product line's VCEK chain (it lists revoked
// ASKs; AMD publishes one per product and key kind).
func (k KDS) CRL(ctx context.Context, productLine string) ([]byte, error) {
	l, err := k.Source.CRL(ctx, amdkds.ChainKey{Product: amdkds.Product(productLine), Signer: amdkds.VCEK})
	if err != nil {
		return nil, transient(err)
	}
	return l.Raw, nil
}
