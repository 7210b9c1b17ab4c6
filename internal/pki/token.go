package pki

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
)

// TokenPrefix marks portal join tokens so they are recognisable in a
// config file or a leaked log line.
const TokenPrefix = "portal-"

// NewToken returns TokenPrefix followed by 32 lower-case hex digits (128
// random bits). Hex keeps the token free of characters that need quoting or
// that read alike.
func NewToken() (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return TokenPrefix + hex.EncodeToString(raw[:]), nil
}

// minTokenLength keeps hand-written tokens from being guessable.
const minTokenLength = 16

// ValidToken reports whether s is acceptable as a join token: at least 16
// printable ASCII characters without spaces. Tokens written by hand in that
// shape are kept, not replaced by a generated one.
func ValidToken(s string) bool {
	if len(s) < minTokenLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// LoadToken reads the join token from dir (the Config.Dir of Ensure).
func LoadToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFileName)
	data, err := readOptional(path)
	if err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	if data == nil {
		return "", fmt.Errorf("pki: no join token at %s: start the server once to create it", path)
	}
	token := strings.TrimSpace(string(data))
	if !ValidToken(token) {
		return "", fmt.Errorf("pki: %s does not hold a valid join token (want at least 16 printable characters)", path)
	}
	return token, nil
}

func ensureToken(b *Bundle) error {
	data, err := readOptional(b.TokenFile)
	if err != nil {
		return err
	}
	reason := "not found"
	if data != nil {
		token := strings.TrimSpace(string(data))
		if ValidToken(token) {
			b.Token = token
			return restrictMode(b.TokenFile)
		}
		reason = "malformed"
	}
	token, err := NewToken()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(b.TokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	b.Token = token
	b.Changes = append(b.Changes, Change{Item: "token", Reason: reason})
	return nil
}
