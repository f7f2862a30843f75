package broker

import (
	"fmt"
	"unicode/utf8"
)

// MaxKeyBytes is the longest queue name, in bytes.
const MaxKeyBytes = 255

// ValidateKey reports whether key may name a queue: 1 to MaxKeyBytes bytes of UTF-8
// with no control characters. Every front door calls it (through the broker), so a
// name is refused the same way, with the same words, on every path.
func ValidateKey(key string) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: must not be empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidKey, len(key), MaxKeyBytes)
	}

	for i, r := range key {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(key[i:]); size == 1 {
				return fmt.Errorf("%w: not valid UTF-8 at byte %d", ErrInvalidKey, i)
			}
		}
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("%w: contains control character %#02x at byte %d",
				ErrInvalidKey, r, i)
		}
	}
	return nil
}
