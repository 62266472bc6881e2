package memsup

import "hash/crc32"

// The Castagnoli table: hash/crc32 uses SSE4.2 for it on amd64, so this is
// the same fast CRC-32C as memsup_crc32c() in child-sdk/wire.c.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C is the checksum memsup puts on a state (CRC-32C, Castagnoli).
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
