import sys

try:
    from .cli import main   # NumPy, Numba and matplotlib load here: a second or two a Ctrl-C can land in
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)

main()
