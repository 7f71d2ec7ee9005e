package validation

import (
	"bytes"
	"maps"

	"k8s.io/apimachinery/pkg/util/validation/field"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Secret types whose data must hold particular keys, as in Kubernetes.
const (
	secretTypeTLS              = "kubernetes.io/tls"
	secretTypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	secretTypeSSHAuth          = "kubernetes.io/ssh-auth"
)

// requiredSecretKeys names the data keys a typed Secret must have.
func requiredSecretKeys(secretType string) []string {
	switch secretType {
	case secretTypeTLS:
		return []string{"tls.crt", "tls.key"}
	case secretTypeDockerConfigJSON:
		return []string{".dockerconfigjson"}
	case secretTypeSSHAuth:
		return []string{"ssh-privatekey"}
	}
	return nil
}

// dataTooLong reports data over MaxDataBytes on whichever of the two maps
// holds more of it.
func dataTooLong(total, first int, firstName, secondName string) field.ErrorList {
	if total <= MaxDataBytes {
		return nil
	}
	name := firstName
	if total-first > first {
		name = secondName
	}
	return field.ErrorList{field.TooLong(field.NewPath(name), "", MaxDataBytes)}
}

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	dataSize, total := 0, 0
	for _, k := range sortedKeys(cm.Data) {
		errs = append(errs, validateConfigMapKey(k, field.NewPath("data").Key(k))...)
		dataSize += len(k) + len(cm.Data[k])
	}
	total = dataSize
	for _, k := range sortedKeys(cm.BinaryData) {
		p := field.NewPath("binaryData").Key(k)
		errs = append(errs, validateConfigMapKey(k, p)...)
		if _, ok := cm.Data[k]; ok {
			errs = append(errs, field.Duplicate(p, k))
		}
		total += len(k) + len(cm.BinaryData[k])
	}
	return append(errs, dataTooLong(total, dataSize, "data", "binaryData")...)
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	dataSize, total := 0, 0
	for _, k := range sortedKeys(s.Data) {
		errs = append(errs, validateConfigMapKey(k, field.NewPath("data").Key(k))...)
		dataSize += len(k) + len(s.Data[k])
	}
	total = dataSize
	// stringData is folded into data by defaulting; check it in case
	// validation runs on a manifest as written.
	for _, k := range sortedKeys(s.StringData) {
		errs = append(errs, validateConfigMapKey(k, field.NewPath("stringData").Key(k))...)
		total += len(k) + len(s.StringData[k])
	}
	errs = append(errs, dataTooLong(total, dataSize, "data", "stringData")...)
	if s.Type == "" {
		return append(errs, field.Required(field.NewPath("type"), ""))
	}
	for _, k := range requiredSecretKeys(s.Type) {
		_, inData := s.Data[k]
		_, inStringData := s.StringData[k]
		if !inData && !inStringData {
			errs = append(errs, field.Required(field.NewPath("data").Key(k), ""))
		}
	}
	return errs
}

// validateImmutableData refuses changes to an immutable ConfigMap or Secret,
// including making it mutable again.
func validateImmutableData(immutable, oldImmutable *bool, dataChanged bool) field.ErrorList {
	var errs field.ErrorList
	if oldImmutable == nil || !*oldImmutable {
		return errs
	}
	if immutable == nil || !*immutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
	}
	if dataChanged {
		errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
	}
	return errs
}

func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	changed := !maps.Equal(cm.Data, old.Data) || !maps.EqualFunc(cm.BinaryData, old.BinaryData, bytes.Equal)
	return validateImmutableData(cm.Immutable, old.Immutable, changed)
}

func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	errs := immutable(s.Type, old.Type, field.NewPath("type"))
	changed := !maps.EqualFunc(s.Data, old.Data, bytes.Equal) || len(s.StringData) > 0
	return append(errs, validateImmutableData(s.Immutable, old.Immutable, changed)...)
}
