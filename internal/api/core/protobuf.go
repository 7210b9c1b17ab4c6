package core

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
)

// Protobuf: the core/v1 Service message is {1: metadata, 2: spec, 3: status}
// and ServiceSpec carried topologyKeys as field 16 until it was removed. We
// encode exactly that, so upstream clients decode our bytes (skipping 16) and
// we decode theirs. Every method the protobuf serializer looks for is defined
// here, because the embedded ObjectMeta would otherwise promote its own
// Marshal/Size and silently encode only the metadata.

const specTopologyKeysField protowire.Number = 16

func (s *ServiceSpec) marshal() ([]byte, error) {
	b, err := s.ServiceSpec.Marshal()
	if err != nil {
		return nil, err
	}
	for _, k := range s.TopologyKeys {
		b = protowire.AppendTag(b, specTopologyKeysField, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	return b, nil
}

// Marshal encodes the Service as a core/v1 protobuf message.
func (s *Service) Marshal() ([]byte, error) {
	meta, err := s.ObjectMeta.Marshal()
	if err != nil {
		return nil, err
	}
	spec, err := s.Spec.marshal()
	if err != nil {
		return nil, err
	}
	status, err := s.Status.Marshal()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(meta)+len(spec)+len(status)+16)
	b = appendBytesField(b, 1, meta)
	b = appendBytesField(b, 2, spec)
	b = appendBytesField(b, 3, status)
	return b, nil
}

func appendBytesField(b []byte, n protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// Size returns the encoded size.
func (s *Service) Size() int {
	b, err := s.Marshal()
	if err != nil {
		return 0
	}
	return len(b)
}

// MarshalTo writes the encoding to the start of data.
func (s *Service) MarshalTo(data []byte) (int, error) {
	b, err := s.Marshal()
	if err != nil {
		return 0, err
	}
	if len(data) < len(b) {
		return 0, fmt.Errorf("protobuf: buffer of %d bytes too small for %d", len(data), len(b))
	}
	return copy(data, b), nil
}

// MarshalToSizedBuffer writes the encoding to the end of data, as gogo's
// reverse marshallers do.
func (s *Service) MarshalToSizedBuffer(data []byte) (int, error) {
	b, err := s.Marshal()
	if err != nil {
		return 0, err
	}
	if len(data) < len(b) {
		return 0, fmt.Errorf("protobuf: buffer of %d bytes too small for %d", len(data), len(b))
	}
	copy(data[len(data)-len(b):], b)
	return len(b), nil
}

// Reset clears the Service.
func (s *Service) Reset() { *s = Service{} }

// ProtoMessage marks Service as a protobuf message.
func (*Service) ProtoMessage() {}

// String is required by the protobuf message interface.
func (s *Service) String() string { return s.V1().String() }

// Unmarshal decodes a core/v1 Service message, keeping field 16 of the spec.
func (s *Service) Unmarshal(data []byte) error {
	var v corev1.Service
	if err := v.Unmarshal(data); err != nil {
		return err
	}
	keys, err := topologyKeysFromService(data)
	if err != nil {
		return err
	}
	*s = *FromV1(&v, keys)
	return nil
}

// topologyKeysFromService walks the top-level message to field 2 (spec) and
// collects every field 16 string in it.
func topologyKeysFromService(data []byte) ([]string, error) {
	var keys []string
	err := walkFields(data, func(n protowire.Number, v []byte) error {
		if n != 2 {
			return nil
		}
		return walkFields(v, func(n protowire.Number, v []byte) error {
			if n == specTopologyKeysField {
				keys = append(keys, string(v))
			}
			return nil
		})
	})
	return keys, err
}

// walkFields calls fn for every length-delimited field and skips the others.
func walkFields(data []byte, fn func(protowire.Number, []byte) error) error {
	for len(data) > 0 {
		n, typ, l := protowire.ConsumeTag(data)
		if l < 0 {
			return protowire.ParseError(l)
		}
		data = data[l:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(data)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := fn(n, v); err != nil {
				return err
			}
			data = data[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, data)
		if m < 0 {
			return protowire.ParseError(m)
		}
		data = data[m:]
	}
	return nil
}

// Marshal encodes the list as a core/v1 ServiceList message
// {1: metadata, 2: repeated items}.
func (l *ServiceList) Marshal() ([]byte, error) {
	meta, err := l.ListMeta.Marshal()
	if err != nil {
		return nil, err
	}
	b := appendBytesField(nil, 1, meta)
	for i := range l.Items {
		item, err := l.Items[i].Marshal()
		if err != nil {
			return nil, err
		}
		b = appendBytesField(b, 2, item)
	}
	return b, nil
}

// Size returns the encoded size.
func (l *ServiceList) Size() int {
	b, err := l.Marshal()
	if err != nil {
		return 0
	}
	return len(b)
}

// MarshalTo writes the encoding to the start of data.
func (l *ServiceList) MarshalTo(data []byte) (int, error) {
	b, err := l.Marshal()
	if err != nil {
		return 0, err
	}
	if len(data) < len(b) {
		return 0, fmt.Errorf("protobuf: buffer of %d bytes too small for %d", len(data), len(b))
	}
	return copy(data, b), nil
}

// MarshalToSizedBuffer writes the encoding to the end of data.
func (l *ServiceList) MarshalToSizedBuffer(data []byte) (int, error) {
	b, err := l.Marshal()
	if err != nil {
		return 0, err
	}
	if len(data) < len(b) {
		return 0, fmt.Errorf("protobuf: buffer of %d bytes too small for %d", len(data), len(b))
	}
	copy(data[len(data)-len(b):], b)
	return len(b), nil
}

// Reset clears the list.
func (l *ServiceList) Reset() { *l = ServiceList{} }

// ProtoMessage marks ServiceList as a protobuf message.
func (*ServiceList) ProtoMessage() {}

// String is required by the protobuf message interface.
func (l *ServiceList) String() string { return fmt.Sprintf("ServiceList{%d items}", len(l.Items)) }

// Unmarshal decodes a core/v1 ServiceList message.
func (l *ServiceList) Unmarshal(data []byte) error {
	*l = ServiceList{}
	return walkFields(data, func(n protowire.Number, v []byte) error {
		switch n {
		case 1:
			return l.ListMeta.Unmarshal(v)
		case 2:
			var s Service
			if err := s.Unmarshal(v); err != nil {
				return err
			}
			l.Items = append(l.Items, s)
		}
		return nil
	})
}
