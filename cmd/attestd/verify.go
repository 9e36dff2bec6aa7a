package main

import (
	"context"
	"io"

	"github.com/attestd/attestd/evidence/sgx"
)

// verifyCmd is "attestd verify": offline verification of an SGX quote or
// OpenEnclave report against a collateral file or directory, printing the
// claims as JSON. All logic lives in sgx.RunVerify; exit codes: 0 verified,
// 1 rejected (stderr names the failed check), 2 usage or I/O error.
//
// Registered in run() with:
//
//	case "verify":
//		return verifyCmd(ctx, args, stdout, stderr)
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return sgx.RunVerify(ctx, args, stdout, stderr)
}
