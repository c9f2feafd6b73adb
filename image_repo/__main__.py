from image_repo.cli import main

main()
