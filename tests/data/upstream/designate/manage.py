import sys


def main():
    from importlib.metadata import version
    print("designate-manage", version("designate"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
