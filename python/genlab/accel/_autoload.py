"""Imported at interpreter startup by ``genlab_accel.pth`` when ``GENLAB_ACCEL=1`` (set by
:func:`genlab.accel.install` for the processes it starts): install genlab.accel there too."""

from genlab.accel import install

install()
