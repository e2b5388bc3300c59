package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Contains reports whether code lies in the range.
func (r StatusRange) Contains(code int) bool { return code >= r.Min && code <= r.Max }

// String formats the range as "200" or "200-399".
func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
}

// MarshalText encodes the range as "200" or "200-399".
func (r StatusRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText decodes 200, "200", "2xx" or "200-299" (bounds inclusive,
// each in 100..599).
func (r *StatusRange) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	v, err := parseStatusRange(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

func parseStatusRange(s string) (StatusRange, error) {
	bad := func(why string) (StatusRange, error) {
		return StatusRange{}, fmt.Errorf("invalid status %q: %s (write 200, \"2xx\" or \"200-299\")", s, why)
	}
	if len(s) == 3 && (strings.HasSuffix(s, "xx") || strings.HasSuffix(s, "XX")) {
		c := s[0]
		if c < '1' || c > '5' {
			return bad("class must be 1xx to 5xx")
		}
		lo := int(c-'0') * 100
		return StatusRange{Min: lo, Max: lo + 99}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	min, err := parseStatusCode(strings.TrimSpace(lo))
	if err != nil {
		return bad(err.Error())
	}
	max := min
	if isRange {
		if max, err = parseStatusCode(strings.TrimSpace(hi)); err != nil {
			return bad(err.Error())
		}
	}
	if min > max {
		return bad("lower bound above upper bound")
	}
	return StatusRange{Min: min, Max: max}, nil
}

func parseStatusCode(s string) (int, error) {
	if len(s) != 3 {
		return 0, fmt.Errorf("not a three-digit status code")
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("not a status code")
	}
	if n < 100 || n > 599 {
		return 0, fmt.Errorf("status code must be in 100..599")
	}
	return n, nil
}
