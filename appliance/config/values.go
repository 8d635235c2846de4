package config

import (
	"strconv"

	"github.com/patchgate/patchgate/conf"
)

// The value types and problems of the config, defined in the conf leaf so that every
// subsystem can write its own section with them.
type (
	Duration = conf.Duration
	ByteSize = conf.ByteSize
	Secret   = conf.Secret
	Prefix   = conf.Prefix
	Problem  = conf.Problem
	Problems = conf.Problems
	Error    = conf.Error
)

// ParseByteSize parses "10GiB", "512 MiB" or a plain number of bytes.
func ParseByteSize(s string) (ByteSize, error) { return conf.ParseByteSize(s) }

// MustPrefix parses s and panics on error; for defaults and tests.
func MustPrefix(s string) Prefix { return conf.MustPrefix(s) }

func itoa(i int) string { return strconv.Itoa(i) }
