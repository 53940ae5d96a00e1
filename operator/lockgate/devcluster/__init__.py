"""The embedded Kubernetes API used by ``lockgate dev``, the demo and the tests.

Built on kmock's KubernetesEmulator, extended with the API semantics the operator and kubectl can see.
"""
