// wire_test.go — the frame decoders against frames of older and newer
// daemons (doc/protocol.md: HELLO_OK and ERROR only grow at the end), and
// truncated payloads.

package dbpool

import (
	"bufio"
	"bytes"
	"testing"
)

func TestHelloOKVersions(t *testing.T) {
	var e encoder
	e.start(fHelloOK)
	e.u16(1)
	e.str("postgres")
	e.str("0.1.0")
	e.u32(1 << 24)
	e.u16(1024)
	old := append([]byte{}, e.b[5:]...)
	if h, ok := decodeHelloOK(old); !ok || h.backend != "postgres" || h.maxParams != 1024 || h.maxBatch != 0 {
		t.Fatalf("HELLO_OK without max_batch_statements: %+v %v", h, ok)
	}
	e.u16(1000)
	e.u32(7) // a field appended by a later daemon
	if h, ok := decodeHelloOK(e.b[5:]); !ok || h.maxBatch != 1000 || h.maxFrame != 1<<24 {
		t.Fatalf("HELLO_OK with more fields: %+v %v", h, ok)
	}
	if _, ok := decodeHelloOK(old[:len(old)-1]); ok {
		t.Fatal("a truncated HELLO_OK was accepted")
	}
}

func TestErrorVersions(t *testing.T) {
	var e encoder
	e.start(fError)
	e.u16(CodeSQL)
	e.str("23505")
	e.str("duplicate key")
	e.u8('T')
	e.u32(0xffffffff)
	if er, ok := decodeError(e.b[5:]); !ok || er.VendorCode != 0 || er.StmtIndex != -1 || er.TxState != 'T' {
		t.Fatalf("ERROR without vendor_code: %+v %v", er, ok)
	}
	e.u32(2067)
	if er, ok := decodeError(e.b[5:]); !ok || er.VendorCode != 2067 || er.SQLState != "23505" {
		t.Fatalf("ERROR with vendor_code: %+v %v", er, ok)
	}
}

func TestReadFrameLimits(t *testing.T) {
	for _, in := range [][]byte{{0, 0, 0, 0}, {0, 0, 0x10, 0, 'r'}} {
		if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), nil, 0x100); err == nil {
			t.Errorf("% x: accepted", in)
		}
	}
	f, _, err := readFrame(bufio.NewReader(bytes.NewReader([]byte{0, 0, 0, 2, 'z', 'I'})), nil, 0x100)
	if err != nil || f.typ != fReady || string(f.payload) != "I" {
		t.Fatalf("READY: %v %v", f, err)
	}
}
