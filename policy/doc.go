// Package policy implements Microsoft Azure Attestation's policy language
// (attestd spec maa-policy.md): Parse compiles a policy text into a *Policy;
// (*Policy).Evaluate runs it over the claims of one attestation
// (configuration → authorization → issuance) and returns the issued claims,
// the engine/token properties and, on request, a trace that explains every
// rule's outcome.
//
// # Compatibility
//
// A policy MAA accepts is accepted here unchanged and yields the same
// decision and policy-issued claims. Where MAA's behaviour is undocumented
// the package follows the choices of spec §13: keywords and function names
// are case-insensitive; tags, claim types, issuers and strings are
// case-sensitive; a tag binds every matching claim; deny wins over permit;
// "!" and functions need version 1.2; configurationrules needs 1.1.
//
// # Errors
//
// Parse returns *ParseError (line, column, offending symbol, what the grammar
// expected, rule path); ParseError.MAAMessage renders MAA's
// PolicyParsingError text. Evaluate returns *EvalError for a denial
// (NoPermit, Deny) or an evaluation failure (Runtime); EvalError.MAAMessage
// renders MAA's PolicyEvaluationError text and, beyond MAA, names the
// deciding rule by line and column.
//
// # Limits
//
// Every limit turns hostile or accidental excess into an error, never a hang:
//
//   - MaxPolicyBytes (1 MiB) of policy text, MaxRules (4096) rules,
//     MaxConditions (256) conditions per rule, MaxProps (64) property tests
//     per condition, MaxExprDepth (32) nested function calls,
//     MaxStringLiteral (256 KiB) per string literal: ParseError.
//
//   - MaxClaims (65536) claims in the incoming set including the ones rules
//     add, MaxValues (65536) values in one expression result: EvalError
//     (Runtime).
//
//   - Per evaluation, set by EvalOptions.Limits (the zero value: the
//     defaults for a stored policy; DraftLimits: the lower budget for a
//     draftPolicyForAttestation, whose author is anonymous), EvalError
//     (Runtime) naming the limit:
//
//     limit          stored policy (zero Limits)            draft (DraftLimits)
//     Work           50,000,000 claim tests (MaxEvalWork)   5,000,000
//     JMESPathSteps  2,000,000 steps (JMESPathSteps)        200,000
//     BuiltBytes     16 MiB built strings (MaxEvalBytes)    2 MiB
//     ValueBytes     1 MiB per string (MaxValueBytes)       256 KiB
//     IssuedClaims   4096 claims (MaxIssuedClaims)          1024
//     IssuedBytes    2 MiB of issued claims (MaxIssuedBytes) 256 KiB
//
//     Work counts claim-property tests and claim copies; JMESPath steps are
//     nodes visited, elements produced and 16-byte units of string built,
//     shared by all JmesPath calls; built strings are what AppendString and
//     JmesPath produce; issued bytes are type plus string value (8 per
//     Boolean or Integer) of every claim issuancerules issues. The issued
//     limits bound the token: without them one 1 MiB value issued under a
//     thousand names made a token of a gigabyte while the evaluator itself
//     held almost nothing. Memory held by one evaluation is thus about
//     BuiltBytes plus the incoming claims plus 64 bytes per claim.
//
//   - An exceeded limit is an *EvalError whose Err is a *LimitError naming
//     it (LimitWork, LimitIssuedBytes, …); errors.Is(err, ErrLimit) holds
//     for it and for every other limit (JSON and query sizes below).
//
//   - JMESPath: queries up to 64 KiB and nested at most 128 deep; JSON
//     inputs (JmesPath, JsonToClaimValue) up to MaxJSONInput (8 MiB) and
//     nested at most 128 deep; results serialised up to ValueBytes.
//
//   - The context is checked between rules: cancellation stops evaluation.
//
//   - Errors quote at most 64 runes of a literal, symbol or claim value
//     followed by "…(N bytes)", and any one message, rule text or hint at
//     most 1024 runes: a 1 MB literal yields an error of a few hundred
//     bytes, in the response and in the log alike.
//
// # Performance
//
// Parse once per policy text and keep the *Policy (it is immutable and safe
// for concurrent use); Evaluate walks the compiled rules with scratch space
// pooled per policy. The default SGX policy evaluates in about 2 µs with 5
// allocations (BenchmarkEvaluateDefaultSGX), some thirty times cheaper than
// one ECDSA P-256 verification (BenchmarkECDSAP256Verify, about 70 µs on
// the 2-core build machine). Tracing allocates; leave EvalOptions.Trace off
// on the hot path.
//
// # Read-only values
//
// A claim is read-only when Claim.ReadOnly is set or it is the service
// claim "pcrs" (spec §5.6); issuing a value derived from it is an error.
//
// # JMESPath
//
// The JmesPath function uses the package internal/jmespath, a complete
// JMESPath implementation (it passes the official compliance suite) with
// MAA's extra function equals_ignore_case, a work budget and objects that
// keep document order. github.com/jmespath/go-jmespath v0.4.0 cannot
// register functions (its function table is unexported), has no budget and
// decodes objects into maps; it serves as the reference implementation in
// the differential tests.
package policy
