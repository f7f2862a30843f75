package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		name, key string
		wantErr   string // empty: valid
	}{
		{"plain", "images", ""},
		{"dots and unicode", "tax_returns.2026.€", ""},
		{"max length", strings.Repeat("k", MaxKeyBytes), ""},
		{"empty", "", "must not be empty"},
		{"too long", strings.Repeat("k", MaxKeyBytes+1), "longer than 255"},
		{"nul", "\x00", "control character 0x00 at byte 0"},
		{"inner nul", "a\x00b", "control character 0x00 at byte 1"},
		{"newline", "line\n", "control character 0x0a at byte 4"},
		{"del", "a\x7f", "control character 0x7f"},
		{"c1 control", "a\u0085", "control character 0x85"},
		{"invalid utf8", "\xff\xfe", "not valid UTF-8 at byte 0"},
		{"truncated utf8", "ok\xe2\x82", "not valid UTF-8 at byte 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKey(tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateKey(%q) = %v, want nil", tt.key, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateKey(%q) = %v, want ErrInvalidKey containing %q",
					tt.key, err, tt.wantErr)
			}
		})
	}
}

func TestValidateKeyAcceptsReplacementCharacter(t *testing.T) {
	// U+FFFD spelled out in UTF-8 is valid, unlike a stray byte that decodes to it.
	if err := ValidateKey("a\uFFFDb"); err != nil {
		t.Fatalf("ValidateKey = %v, want nil", err)
	}
}
