package auth

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// TokenFile authenticates tokens listed in a static CSV file, in
// kube-apiserver's --token-auth-file format:
//
//	token,user,uid,"group1,group2"
//
// It is for local use; tokens cannot be revoked without a restart.
type TokenFile struct {
	tokens map[string]User
}

// LoadTokenFile reads a token file from path.
func LoadTokenFile(path string) (*TokenFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open token file: %w", err)
	}
	defer f.Close()
	tf, err := ParseTokenFile(f)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return tf, nil
}

// ParseTokenFile parses token file content. Blank lines and lines starting
// with # are skipped.
func ParseTokenFile(r io.Reader) (*TokenFile, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	tf := &TokenFile{tokens: map[string]User{}}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < 3 {
			return nil, fmt.Errorf("line %d: want token,user,uid[,\"group1,group2\"], got %d fields", line, len(rec))
		}
		tok, name, uid := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1]), strings.TrimSpace(rec[2])
		if tok == "" || name == "" {
			return nil, fmt.Errorf("line %d: token and user must not be empty", line)
		}
		if _, dup := tf.tokens[tok]; dup {
			return nil, fmt.Errorf("line %d: duplicate token for user %q", line, name)
		}
		u := User{Name: name, UID: uid}
		if len(rec) > 3 {
			for g := range strings.SplitSeq(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					u.Groups = append(u.Groups, g)
				}
			}
		}
		tf.tokens[tok] = u
	}
	return tf, nil
}

// AuthenticateToken implements Authenticator.
func (tf *TokenFile) AuthenticateToken(_ context.Context, token string) (User, bool, error) {
	// Compare against every entry in constant time so response timing does
	// not reveal token prefixes.
	var found User
	ok := false
	for t, u := range tf.tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			found, ok = u, true
		}
	}
	return found, ok, nil
}
