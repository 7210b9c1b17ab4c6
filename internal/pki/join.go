package pki

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// A join token is "<token>::sha256:<hex>": the secret agents authenticate
// with, and the SHA-256 of the cluster CA certificate (DER). An agent that
// has only the token fetches the CA from the server's public /cacerts,
// checks it against the hash, and from then on verifies the server with it:
// no CA file to copy and no insecure mode.
const joinHashSep = "::sha256:"

// JoinToken is the join token of this bundle.
func (b *Bundle) JoinToken() (string, error) {
	h, err := CAHash(b.CACertPEM)
	if err != nil {
		return "", err
	}
	return b.Token + joinHashSep + h, nil
}

// CAHash is the hex SHA-256 of the first certificate in caPEM (DER bytes).
func CAHash(caPEM []byte) (string, error) {
	blk, _ := pem.Decode(caPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", errors.New("pki: no CA certificate in PEM data")
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

// ParseJoinToken splits a join token into its secret and CA hash.
func ParseJoinToken(s string) (secret, caHash string, err error) {
	i := strings.Index(s, joinHashSep)
	if i < 0 {
		return "", "", fmt.Errorf("join token has no CA hash (want <token>%s<64 hex>, as `portal server` writes in <data-dir>/join-token)", joinHashSep)
	}
	secret, caHash = s[:i], s[i+len(joinHashSep):]
	if !ValidToken(secret) {
		return "", "", errors.New("join token: the secret part is too short or has spaces")
	}
	if b, err := hex.DecodeString(caHash); err != nil || len(b) != sha256.Size {
		return "", "", errors.New("join token: the CA hash is not 64 hex digits")
	}
	return secret, strings.ToLower(caHash), nil
}

// VerifyCA checks caPEM against a hash from a join token.
func VerifyCA(caPEM []byte, caHash string) error {
	got, err := CAHash(caPEM)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(caHash)) != 1 {
		return fmt.Errorf("the server's CA (sha256:%s) does not match the join token's (sha256:%s): wrong server or token", got, caHash)
	}
	return nil
}
