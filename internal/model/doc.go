// Package model holds the Go form of the CodePipeline service model (API 2015-07-09): a type per
// shape, a validator per input, the Service interface every operation is answered through, and
// the errors the service returns. The *_gen.go files are written by ./gen from botocore's copy of
// the model; the rest of the package is the hand-written support they rely on.
package model

//go:generate go run ./gen
