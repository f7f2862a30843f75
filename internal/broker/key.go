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

	// Most names are printable ASCII: one pass over bytes settles them, so only
	// other names pay for decoding runes.
	ascii := true
	for i := 0; i < len(key); i++ {
		if b := key[i]; b < 0x20 || b >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return nil
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
