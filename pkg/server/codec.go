package server

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// PreEncoded is a message already in its wire form. A handler that sends
// the same message to many streams (a watch event to every watcher) encodes
// it once and sends PreEncoded to each: the server's codec passes it through
// untouched. The bytes are shared and must not be modified.
type PreEncoded []byte

// codec is grpc-go's proto codec, except that it sends PreEncoded messages
// as they are.
type codec struct{ proto encoding.CodecV2 }

func newCodec() (codec, error) {
	c := encoding.GetCodecV2("proto")
	if c == nil {
		return codec{}, fmt.Errorf("server: grpc-go's proto codec is not registered")
	}
	return codec{proto: c}, nil
}

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(PreEncoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c codec) Name() string { return c.proto.Name() }
