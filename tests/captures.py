"""Small nvidia-smi captures shaped like the demo lab's hosts, shared by the page, API and browser tests."""

# The demo lab's 4x H100 NVL host as `nvidia-smi topo -m` prints it: two NV12 pairs, one per socket.
NVL_CAPTURE = """\
\tGPU0\tGPU1\tGPU2\tGPU3\tCPU Affinity\tNUMA Affinity
GPU0\t X \tNV12\tSYS\tSYS\t0-55\t0
GPU1\tNV12\t X \tSYS\tSYS\t0-55\t0
GPU2\tSYS\tSYS\t X \tNV12\t56-111\t1
GPU3\tSYS\tSYS\tNV12\t X \t56-111\t1
"""
