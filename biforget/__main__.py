from biforget.cli import main

# vLLM's engine spawns its workers, which re-import the main module: only the real entry may run main.
if __name__ == "__main__":
    main()
