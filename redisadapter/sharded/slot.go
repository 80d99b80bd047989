package sharded

import "strings"

// slotCount is the number of hash slots of a Redis Cluster.
const slotCount = 16384

// slot returns the hash slot of a shard channel, computed as Redis does for
// keys: CRC16 (XMODEM) of the name, or of its hash tag (the part between
// the first "{" and the next "}" when that part is not empty), modulo
// 16384.
func slot(channel string) int {
	if open := strings.IndexByte(channel, '{'); open >= 0 {
		if end := strings.IndexByte(channel[open+1:], '}'); end > 0 {
			channel = channel[open+1 : open+1+end]
		}
	}
	return int(crc16(channel)) % slotCount
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the
// checksum of Redis Cluster's key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
