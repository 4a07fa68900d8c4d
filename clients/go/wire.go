// wire.go — the dbpoold protocol v1 wire format (doc/protocol.md) for the Go
// driver: frame encoding into a reusable buffer, frame reading, and the
// decoding of values, COLUMNS, STMT_DONE and ERROR payloads. No I/O policy
// lives here: conn.go decides what to send and how long to wait.

package dbpool

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Frame types (doc/protocol.md, "Frames").
const (
	fHello     = 'H'
	fQuery     = 'Q'
	fBatch     = 'B'
	fBegin     = 'T'
	fCommit    = 'C'
	fRollback  = 'R'
	fPing      = 'P'
	fTerminate = 'X'
	fCancel    = 'K'
	fPin       = 'N'
	fUnpin     = 'U'

	fHelloOK  = 'h'
	fColumns  = 'd'
	fRow      = 'r'
	fStmtDone = 's'
	fReady    = 'z'
	fError    = 'e'
)

// Value tags.
const (
	tagNull    = 0
	tagInt64   = 1
	tagFloat64 = 2
	tagText    = 3
	tagBlob    = 4
	tagBool    = 5
)

const protocolVersion = 1

// encoder builds one frame at a time in a buffer that is reused.
type encoder struct{ b []byte }

func (e *encoder) start(typ byte) { e.b = append(e.b[:0], 0, 0, 0, 0, typ) }
func (e *encoder) u8(v byte)      { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16)   { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32)   { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64)   { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) str(s string)   { e.u32(uint32(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte) { e.u32(uint32(len(p))); e.b = append(e.b, p...) }

// finish writes the length prefix and returns the frame.
func (e *encoder) finish() []byte {
	binary.BigEndian.PutUint32(e.b, uint32(len(e.b)-4))
	return e.b
}

// frame is one received frame; payload is valid until the next read.
type frame struct {
	typ     byte
	payload []byte
}

// readFrame reads one frame, refusing one above maxFrame.
func readFrame(r *bufio.Reader, buf []byte, maxFrame uint32) (frame, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return frame{}, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n == 0 || n > maxFrame {
		return frame{}, buf, fmt.Errorf("frame length %d out of range", n)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, buf, err
	}
	return frame{typ: buf[0], payload: buf[1:]}, buf, nil
}

// decoder reads a payload; the first short read sets bad and yields zeros.
type decoder struct {
	p   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || n < 0 || len(d.p) < n {
		d.bad = true
		return nil
	}
	v := d.p[:n]
	d.p = d.p[n:]
	return v
}

func (d *decoder) u8() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) raw() []byte {
	n := d.u32()
	if d.bad {
		return nil
	}
	return d.take(int(n))
}

func (d *decoder) str() string { return string(d.raw()) }

// value decodes one tagged value into a driver value (copies bytes).
func (d *decoder) value() (interface{}, byte) {
	switch tag := d.u8(); tag {
	case tagNull:
		return nil, tag
	case tagInt64:
		return int64(d.u64()), tag
	case tagFloat64:
		return math.Float64frombits(d.u64()), tag
	case tagText:
		return d.str(), tag
	case tagBlob:
		b := d.raw()
		return append([]byte{}, b...), tag
	case tagBool:
		v := d.u8()
		if v > 1 {
			d.bad = true
		}
		return v == 1, tag
	default:
		d.bad = true
		return nil, tag
	}
}

// helloOK is the daemon's handshake answer.
type helloOK struct {
	backend, server string
	maxFrame        uint32
	maxParams       uint16
	maxBatch        uint16 // 0: not announced (older daemon)
}

func decodeHelloOK(p []byte) (helloOK, bool) {
	d := decoder{p: p}
	var h helloOK
	if d.u16() != protocolVersion {
		return h, false
	}
	h.backend, h.server = d.str(), d.str()
	h.maxFrame, h.maxParams = d.u32(), d.u16()
	if !d.bad && len(d.p) >= 2 {
		h.maxBatch = d.u16()
	}
	return h, !d.bad
}

func decodeError(p []byte) (*Error, bool) {
	d := decoder{p: p}
	e := &Error{Code: int(d.u16())}
	e.SQLState, e.Message = d.str(), d.str()
	e.TxState = d.u8()
	e.StmtIndex = int32(d.u32())
	if !d.bad && len(d.p) >= 4 {
		e.VendorCode = int32(d.u32())
	}
	return e, !d.bad
}

func decodeColumns(p []byte) (names, types []string, ok bool) {
	d := decoder{p: p}
	n := int(d.u16())
	names, types = make([]string, 0, n), make([]string, 0, n)
	for i := 0; i < n && !d.bad; i++ {
		names = append(names, d.str())
		types = append(types, d.str())
	}
	return names, types, !d.bad
}

func decodeStmtDone(p []byte) (affected, lastID int64, ok bool) {
	d := decoder{p: p}
	affected, lastID = int64(d.u64()), int64(d.u64())
	return affected, lastID, !d.bad
}
