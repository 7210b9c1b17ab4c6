package apiserver

import (
	"errors"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// negotiatedSerializer is Codecs with decoding errors that speak in the
// field paths users write. portal's Service spec embeds the k8s.io/api
// ServiceSpec (to add topologyKeys), and Go's JSON errors name embedded
// structs, so a map-shaped "ports" would be reported at
// "spec.ServiceSpec.ports". We report "spec.ports", as Kubernetes does.
type negotiatedSerializer struct {
	runtime.NegotiatedSerializer
}

func newNegotiatedSerializer() runtime.NegotiatedSerializer {
	return negotiatedSerializer{Codecs}
}

func (n negotiatedSerializer) SupportedMediaTypes() []runtime.SerializerInfo {
	in := n.NegotiatedSerializer.SupportedMediaTypes()
	out := make([]runtime.SerializerInfo, len(in))
	for i, info := range in {
		out[i] = info
		out[i].Serializer = wrapSerializer(info.Serializer)
		out[i].PrettySerializer = wrapSerializer(info.PrettySerializer)
		out[i].StrictSerializer = wrapSerializer(info.StrictSerializer)
	}
	return out
}

func (n negotiatedSerializer) DecoderToVersion(d runtime.Decoder, gv runtime.GroupVersioner) runtime.Decoder {
	return pathFixingDecoder{n.NegotiatedSerializer.DecoderToVersion(d, gv)}
}

func wrapSerializer(s runtime.Serializer) runtime.Serializer {
	if s == nil {
		return nil
	}
	return pathFixingSerializer{Serializer: s}
}

type pathFixingSerializer struct {
	runtime.Serializer
}

func (s pathFixingSerializer) Decode(data []byte, gvk *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	obj, k, err := s.Serializer.Decode(data, gvk, into)
	return obj, k, fixPaths(err)
}

type pathFixingDecoder struct {
	runtime.Decoder
}

func (d pathFixingDecoder) Decode(data []byte, gvk *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	obj, k, err := d.Decoder.Decode(data, gvk, into)
	return obj, k, fixPaths(err)
}

// embeddedPaths maps the Go-embedding spelling to the JSON one.
var embeddedPaths = strings.NewReplacer("spec.ServiceSpec.", "spec.", "ServiceSpec.spec.ServiceSpec.", "ServiceSpec.spec.")

// fixPaths rewrites field paths in decoding errors; strict-decoding
// errors (unknown or duplicate fields) keep their type so the apiserver
// still tells them apart from fatal ones.
func fixPaths(err error) error {
	if err == nil || !strings.Contains(err.Error(), "ServiceSpec.") {
		return err
	}
	if se, ok := runtime.AsStrictDecodingError(err); ok {
		errs := se.Errors()
		fixed := make([]error, len(errs))
		for i, e := range errs {
			fixed[i] = errors.New(embeddedPaths.Replace(e.Error()))
		}
		return runtime.NewStrictDecodingError(fixed)
	}
	return errors.New(embeddedPaths.Replace(err.Error()))
}
